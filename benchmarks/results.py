"""Models x metrics (@5, @10, @20) x fit time on ML-100K, Ciao (the CFGAN authors' splits) and the
full Online Retail log: the table in docs/results.md.

    .venv/bin/python benchmarks/results.py                                   # every data set and model
    .venv/bin/python benchmarks/results.py --datasets ML100K --models ease cfgan
    .venv/bin/python benchmarks/results.py --datasets ML100K --models cfgan --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/results.py --models cfgan=cfgan-ml100k      # a preset for one model
    .venv/bin/python benchmarks/results.py --models cfgan --set train.device=cuda
    .venv/bin/python benchmarks/results.py --datasets Ciao --models cfgan=cfgan-wgan --against ease

A model is a family name (`pop`, `itemknn`, `ease`, `cfgan`), optionally `=PRESET` (e.g.
`cfgan=cfgan-ml100k`, the authors' hyperparameters); `--set` overrides apply to every model. With the
`default` preset, `cfgan` is blended with EASE as `genrec run` trains it; another family is fitted
alone. Every hyperparameter choice and early stop
sees only validation carve-outs of the training data; the test split is scored once.
Reads ../shared/data (never copied into the repo); a data set that is absent is skipped with a
message. Prints one markdown row per model and data set as it goes, then the whole table. With
`--against MODEL` (e.g. `ease`), each run's NDCG@20 is also compared with MODEL's (fitted once per
data set, seed 0) on the same test users: the mean per-user difference and its 95% paired bootstrap
interval (2,000 samples, as the gate computes it), so a gap can be told from the test set's noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from genrec import data as gdata
from genrec import pipeline, preprocessing
from genrec.config import load_config
from genrec.dataset import Dataset
from genrec.gating import paired_bootstrap
from genrec.preprocessing import from_split

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = ("ML100K", "Ciao", "OnlineRetail")
METRICS = ("precision", "recall", "ndcg", "mrr")
KS = (5, 10, 20)


def load(name: str, data_dir: Path, config: str) -> Dataset | None:
    # Online Retail's charges (postage, fees) kept, as when docs/results.md's rows were measured.
    cfg = load_config(config, ["data.non_product_codes="])
    if name == "OnlineRetail":
        path = data_dir / "online-retail" / "online_retail.csv.gz"
        if not path.exists():
            print(f"skipped {name}: {path} is absent")
            return None
        interactions, _ = gdata.to_interactions(gdata.read_raw(path, "online-retail", cfg.data), cfg.data)
        return preprocessing.prepare(preprocessing.to_implicit(interactions, cfg.data, cfg.prepare), cfg.prepare)
    train, test = data_dir / "cfgan-splits" / f"{name}.train", data_dir / "cfgan-splits" / f"{name}.test"
    if not train.exists():
        print(f"skipped {name}: {train} is absent (MovieLens/Ciao are not redistributed with genrec)")
        return None
    return from_split(gdata.load_interactions(train, "cfgan"), gdata.load_interactions(test, "cfgan"), cfg.prepare)


class Run(NamedTuple):
    metrics: dict[str, float]
    fit_seconds: float
    chosen: dict
    ndcg20: np.ndarray
    """Per test user, in the order of the test users (the same for every model on a data set)."""
    longest_wait: int | None
    """An iterative fit's most epochs between two gains on validation up to its best (what
    `train.patience` must cover for it to keep the same epoch); None for the others."""


def longest_wait(history: list[dict]) -> int:
    best, at, wait = -np.inf, 0, 0
    for record in history:
        if record["val_ndcg@20"] > best:
            wait = max(wait, record["epoch"] - at) if at else wait
            best, at = record["val_ndcg@20"], record["epoch"]
    return wait


def run(data: Dataset, model: str, seed: int, overrides: list[str]) -> Run:
    family, _, preset = model.partition("=")
    cfg = load_config(preset or "default", [f"model.name={family}", *overrides, f"train.seed={seed}"])
    start = time.perf_counter()
    fitted = pipeline.train(data, cfg)
    fit_seconds = time.perf_counter() - start
    result = pipeline.evaluate(fitted, data, cfg)
    loop = fitted.training_
    wait = longest_wait(loop.history) if loop is not None and loop.best_score is not None else None
    return Run(result.metrics, fit_seconds, dict(fitted.chosen_params_), result.per_user["ndcg@20"], wait)


def compared(run: Run, reference: Run) -> str:
    """NDCG@20 of `run` minus `reference`'s, per test user: the mean and its 95% paired interval."""
    delta, low, high = paired_bootstrap(run.ndcg20, reference.ndcg20, samples=2000, seed=0)
    return f"ndcg@20 {delta:+.4f} (95% paired interval {low:+.4f} to {high:+.4f}, {len(run.ndcg20)} users)"


def header() -> str:
    short = {"precision": "P", "recall": "R", "ndcg": "NDCG", "mrr": "MRR"}
    cols = [f"{short[m]}@{k}" for k in KS for m in METRICS]
    return "| data | model | " + " | ".join(cols) + " | fit s | chosen |\n|" + "---|" * (len(cols) + 4)


def row(dataset: str, model: str, runs: list[Run]) -> str:
    cells = []
    for k in KS:
        for m in METRICS:
            values = [r.metrics[f"{m}@{k}"] for r in runs]
            cell = f"{statistics.mean(values):.4f}"
            if len(values) > 1:
                cell += f" ± {statistics.stdev(values):.4f}"
            cells.append(cell)
    fits = [r.fit_seconds for r in runs]
    chosen = "; ".join(f"{k}={v}" for k, v in runs[0].chosen.items()) if len(runs) == 1 else f"{len(runs)} seeds"
    return f"| {dataset} | {model} | " + " | ".join(cells) + f" | {statistics.mean(fits):.1f} | {chosen} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--models", nargs="+", default=["pop", "itemknn", "ease", "cfgan"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a config override for every model")
    parser.add_argument("--against", metavar="MODEL",
                        help="compare each run's NDCG@20 with MODEL's on the same test users (paired bootstrap)")
    args = parser.parse_args()

    rows = []
    print(header(), flush=True)
    for name in args.datasets:
        data = load(name, args.data_dir, "default")
        if data is None:
            continue
        print(f"<!-- {name}: {data.n_users} users, {data.n_items} items, train {data.train.nnz}, "
              f"validation {data.validation.nnz}, test {data.test.nnz} -->", flush=True)
        reference = run(data, args.against, 0, args.overrides) if args.against else None
        for model in args.models:
            runs = []
            for seed in args.seeds:
                same_as_reference = reference is not None and (model, seed) == (args.against, 0)
                runs.append(reference if same_as_reference else run(data, model, seed, args.overrides))
                if len(args.seeds) > 1 or runs[-1].longest_wait is not None:
                    waited = "" if runs[-1].longest_wait is None else \
                        f", at most {runs[-1].longest_wait} epochs between validation gains"
                    print(f"<!-- {name} {model} seed {seed}: ndcg@20 {runs[-1].metrics['ndcg@20']:.4f}, "
                          f"fit {runs[-1].fit_seconds:.1f} s, {runs[-1].chosen}{waited} -->", flush=True)
                if reference is not None:
                    print(f"<!-- {name} {model} seed {seed} against {args.against}: "
                          f"{compared(runs[-1], reference)} -->", flush=True)
            line = row(name, model, runs)
            rows.append(line)
            print(line, flush=True)
    print("\n" + header())
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
