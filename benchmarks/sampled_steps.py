"""Time the sampled CFGAN's steps (`model.cfgan.output=sampled`) on a synthetic shop's training split.

    .venv/bin/python benchmarks/sampled_steps.py                 # size M, the default preset's CFGAN
    .venv/bin/python benchmarks/sampled_steps.py --size S --repeats 3

Builds the split as the flow does (`genrec.synthetic.shop_log`, implicit feedback, the default
split), then times `--d-steps` D steps and `--g-steps` G steps on the first rows of a shuffled
order, each with its batch prepared, `--repeats` times on a fresh trainer, and prints each run's
seconds and milliseconds per step. An epoch at M is 782 D steps and 3,128 G steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from genrec import preprocessing
from genrec.allocator import keep_freed_memory
from genrec.config import load_config
from genrec.models.cfgan.sampled import SampledCFGANTrainer
from genrec.synthetic import SIZES, ShopShape, shop_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="M", choices=list(SIZES))
    parser.add_argument("--d-steps", type=int, default=250)
    parser.add_argument("--g-steps", type=int, default=1562)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    cfg = load_config("default")
    log = shop_log(ShopShape(*SIZES[args.size]), seed=0)
    log["timestamp"] = pd.to_datetime(log["timestamp"], unit="s")
    log["rating"] = np.nan
    train = preprocessing.prepare(preprocessing.to_implicit(log, cfg.data, cfg.prepare), cfg.prepare).train
    keep_freed_memory()  # as the training loop does
    section = cfg.model.section("cfgan")
    print(f"{args.size}: {train.shape[0]:,} users x {train.shape[1]:,} items, {train.nnz:,} training interactions; "
          f"{torch.get_num_threads()} threads")
    for repeat in range(args.repeats):
        trainer = SampledCFGANTrainer(section, train, torch.device("cpu"), 0)
        order = trainer.rng.permutation(trainer.active)

        def batches(size: int, n: int):
            return (order[(i * size) % len(order):][:size] for i in range(n))

        start = time.perf_counter()
        for rows in batches(section.batch_d, args.d_steps):
            trainer.step_d(trainer._batch(rows))
        middle = time.perf_counter()
        for rows in batches(section.batch_g, args.g_steps):
            trainer.step_g(trainer._batch(rows))
        end = time.perf_counter()
        print(f"run {repeat + 1}: {end - start:.1f} s; D {1e3 * (middle - start) / max(args.d_steps, 1):.2f} ms a step, "
              f"G {1e3 * (end - middle) / max(args.g_steps, 1):.2f} ms a step", flush=True)


if __name__ == "__main__":
    main()
