"""Exploration, not a feature: would cold items do better known by their nearest warm items?

A trained attribute-aware generator knows a cold item by its attribute row alone (its id row is left
out). This script trains one in `benchmarks/cold_start.py`'s protocol (seed 0; `seqgan` as its
cross-entropy twin), then replaces each cold item's row of the fitted output table (and CFGAN's
output bias) by (1 - alpha) x its own row + alpha x the cosine-weighted mean of the rows of its k
nearest warm items by feature row (content KNN's neighbours), and prints warm NDCG@20 and cold Recall@20 / NDCG@20 for each
k and alpha. The k and alpha are compared on the test split, so the figures say whether a version
that chooses them on validation is worth building, not what such a version would reach.

    .venv/bin/python benchmarks/cold_rows.py --datasets OnlineRetail --models seqgan
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from genrec import pipeline
from genrec.config import load_config
from genrec.models.content import content_neighbours
from genrec.validation import DataValidator

from cold_start import SHARED, SOURCES  # the cold-start protocol's data sets and cutoffs (this folder)


def output_table(model, family: str) -> tuple[torch.Tensor, int, torch.Tensor | None]:
    """The fitted model's item rows it scores with, where item i's row is, and its per-item bias."""
    if family == "seqgan":
        return model.encoder_.items.ids.weight, 1, None  # folded; row 0 pads
    cfgan = getattr(model, "first", model)  # the default blends CFGAN with EASE
    last = cfgan.generator_.net[-1]
    return last.weight, 0, last.bias


def nearest_warm(data, k: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """The cold items and, row by row, their k nearest warm items by cosine of feature rows
    (content KNN's neighbours), the cosines scaled to sum to 1 per cold item."""
    cold = np.asarray(data.cold_items)
    warm = np.ones(data.n_items, dtype=bool)
    warm[cold] = False
    near = content_neighbours(data.features.matrix, warm, k)[cold]
    total = np.asarray(near.sum(axis=1)).ravel()
    return cold, sp.diags(np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)) @ near


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--models", nargs="+", default=["seqgan", "cfgan"])
    args = parser.parse_args()
    for name in args.datasets:
        relative, cutoff = SOURCES[name]
        if not (SHARED / relative).exists():
            print(f"skipped {name}: {SHARED / relative} is absent (MovieLens is not redistributed with genrec)")
            continue
        protocol = ["prepare.split=time", f"prepare.cutoff={cutoff}"]
        cfg = load_config("default", protocol)
        with tempfile.TemporaryDirectory() as docs:
            data = pipeline.prepare(pipeline.validate(SHARED / relative, cfg, DataValidator(Path(docs))), cfg)
        for family in args.models:
            extra = ["model.adversarial=false"] if family == "seqgan" else []
            run = load_config("default", [*protocol, f"model.name={family}", "train.seed=0", "model.attributes=true",
                                          *extra])
            start = time.perf_counter()
            model = pipeline.train(data, run, None)
            print(f"{name} {family}: fit {time.perf_counter() - start:.0f} s")

            def report(label: str) -> None:
                groups = pipeline.evaluate_cold_start(model, data, run)
                warm, cold = groups["warm"].metrics, groups["cold"].metrics
                print(f"  {label}: warm NDCG@20 {warm['ndcg@20']:.4f} | cold R@20 {cold['recall@20']:.4f} "
                      f"NDCG@20 {cold['ndcg@20']:.4f}", flush=True)

            report("as trained")
            weight, offset, bias = output_table(model, family)
            rows, biases = weight.detach().clone(), None if bias is None else bias.detach().clone()
            for k in (10, 50):
                cold, near = nearest_warm(data, k)
                near = torch.from_numpy(near.toarray().astype(np.float32))  # cold x items
                at = torch.from_numpy(cold + offset)
                for alpha in (0.5, 1.0):
                    with torch.no_grad():
                        weight.copy_(rows)
                        weight[at] = (1 - alpha) * rows[at] + alpha * near @ rows[offset:]
                        if bias is not None:
                            bias.copy_(biases)
                            bias[at] = (1 - alpha) * biases[at] + alpha * near @ biases[offset:]
                    report(f"k {k}, alpha {alpha}")


if __name__ == "__main__":
    main()
