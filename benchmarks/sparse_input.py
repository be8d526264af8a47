"""Seconds per CFGAN training epoch with the networks reading sparse rows (embedding bags) against
dense ones, on a synthetic catalogue larger than MovieLens: what the sparse input saves as the
number of items grows.

    .venv/bin/python benchmarks/sparse_input.py                       # 2,000 users x 20,000 items
    .venv/bin/python benchmarks/sparse_input.py --items 5000 --density 0.01
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

from genrec.config import load_config
from genrec.models import make_model
from genrec.models.cfgan import CFGANTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--density", type=float, default=0.003)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    train = sp.random(args.users, args.items, density=args.density, format="csr", dtype=np.float32, random_state=0)
    train.data[:] = 1.0
    model = make_model(load_config("default").model)
    trainers = {}
    for sparse in (True, False):
        trainers[sparse] = CFGANTrainer(model, train, torch.device("cpu"))
        trainers[sparse].sparse_condition = sparse
        trainers[sparse].epoch()  # warm-up
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.epochs):  # alternated, so that a busy moment hits both
        for sparse, trainer in trainers.items():
            start = time.perf_counter()
            trainer.epoch()
            seconds[sparse].append(time.perf_counter() - start)
    print(f"{args.users} users x {args.items} items, {train.nnz} interactions; torch threads {torch.get_num_threads()}")
    for sparse, values in seconds.items():
        print(f"{'sparse' if sparse else 'dense '} input: {min(values):.2f} s/epoch (best of {len(values)}; "
              f"all: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
