"""The sequential table: models x HR@10 / NDCG@10 x fit seconds under leave-last-out, on ML-100K
(`u.data`, with timestamps) and the full Online Retail log.

    .venv/bin/python benchmarks/sequential.py
    .venv/bin/python benchmarks/sequential.py --datasets OnlineRetail --models transitions ease
    .venv/bin/python benchmarks/sequential.py --seeds 0 1 2 3 4 --models seqgan
    .venv/bin/python benchmarks/sequential.py --models seqgan --set model.adversarial=true

With `model.adversarial=true`, the sequence family's cross-entropy twin (its first stage, what
`model.adversarial=false` keeps with the same seed) is scored beside it, with a paired bootstrap
over test users of the NDCG@10 difference (adversarial - twin).

The protocol (issue 17's): each user's items in time order (ties in file order), a repeated item kept
where the user first chose it, users with at least 5 items; test = each user's last item,
validation = the one before; full ranking over all items with the user's earlier items filtered. With
one test item per user, HR@10 is recall@10. Every choice (EASE's lambda) is made on the validation
item alone; the test item is scored once. Reads ../shared/data (never copied into the repo); a data
set that is absent is skipped with a message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from genrec import data as gdata
from genrec import pipeline, preprocessing
from genrec.config import load_config
from genrec.dataset import Dataset
from genrec.evaluation import evaluate_scores
from genrec.gating import paired_bootstrap
from genrec.models.seqgan.networks import score_histories
from genrec.training import FitOptions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {"ML100K": ("ml-100k/u.data", "movielens-100k"), "OnlineRetail": ("online-retail/online_retail.csv.gz",
                                                                             "online-retail")}
PROTOCOL = ["prepare.split=leave-last-out", "prepare.repeats=first", "prepare.min_user_interactions=5",
            "prepare.min_interactions_to_split=3"]
"""The protocol's settings."""
ON_VALIDATION = {"ease": ["model.ease.tuning_repeats=1"], "itemknn": ["model.itemknn.tuning_repeats=1"]}
"""Families that tune over random carve-outs by default choose on the validation item here instead."""


def load(name: str, data_dir: Path) -> Dataset | None:
    relative, fmt = SOURCES[name]
    path = data_dir / relative
    if not path.exists():
        print(f"skipped {name}: {path} is absent (MovieLens is not redistributed with genrec)")
        return None
    cfg = load_config("default", PROTOCOL)
    interactions, _ = gdata.to_interactions(gdata.read_raw(path, fmt, cfg.data))
    return preprocessing.prepare(preprocessing.to_implicit(interactions, cfg.data, cfg.prepare), cfg.prepare)


def overrides_for(family: str, extra: list[str]) -> list[str]:
    return [f"model.name={family}", *PROTOCOL, *ON_VALIDATION.get(family, []), *extra]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--models", nargs="+", default=["pop", "transitions", "ease"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every model")
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--progress", action="store_true", help="print every epoch's record")
    args = parser.parse_args(argv)
    options = FitOptions(on_epoch=lambda epoch, record: print(f"    epoch {epoch}: {record}", flush=True)) \
        if args.progress else None

    rows, twins = [], []
    for name in args.datasets:
        data = load(name, args.data_dir)
        if data is None:
            continue
        print(f"{name}: {data.stats['users']} users, {data.stats['items']} items, {data.stats['interactions']} "
              "interactions", flush=True)
        for family in args.models:
            results = []
            for seed in args.seeds:
                cfg = load_config("default", overrides_for(family, [f"train.seed={seed}", *args.overrides]))
                start = time.perf_counter()
                model = pipeline.train(data, cfg, options)
                fit = time.perf_counter() - start
                result = pipeline.evaluate(model, data, cfg)
                metrics = result.metrics
                results.append((metrics["ndcg@10"], metrics["recall@10"], fit))
                print(f"  {family} seed {seed}: NDCG@10 {metrics['ndcg@10']:.4f} HR@10 {metrics['recall@10']:.4f} "
                      f"fit {fit:.1f}s {model.chosen_params_ or ''}", flush=True)
                if getattr(model, "twin_", None) is not None:
                    twins.append((name, seed, result, twin_result(model, data, cfg)))
            rows.append((name, family, results))

    print("\n| data | model | NDCG@10 | HR@10 | fit s | seeds |\n|---|---|---|---|---|---|")
    for name, family, results in rows:
        def cell(values: list[float]) -> str:
            return f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")

        ndcg, hr, fit = (list(c) for c in zip(*results))
        print(f"| {name} | {family} | {cell(ndcg)} | {cell(hr)} | {statistics.mean(fit):.1f} | {len(results)} |")
    if twins:
        print_twins(twins)
    sys.stdout.flush()


def twin_result(model, data: Dataset, cfg):
    """The cross-entropy twin of an adversarial fit, scored on the test split as the model is."""
    return evaluate_scores(lambda users: score_histories(model.twin_, data.histories(users)), data.known, data.test,
                           cfg.eval.ks)


def print_twins(twins: list) -> None:
    """Adversarial against twin on the test split: per seed, and each user's NDCG@10 averaged over
    the seeds, with a paired bootstrap over users of the difference (adversarial - twin)."""
    print("\n| data | seed | adversarial NDCG@10 | twin NDCG@10 | difference [95% interval] |\n|---|---|---|---|---|")
    by_data: dict[str, list] = {}
    for name, seed, adversarial, twin in twins:
        assert np.array_equal(adversarial.users, twin.users)
        a, t = adversarial.per_user["ndcg@10"], twin.per_user["ndcg@10"]
        print(f"| {name} | {seed} | {a.mean():.4f} | {t.mean():.4f} | {interval(a, t, seed)} |")
        by_data.setdefault(name, []).append((a, t))
    for name, pairs in by_data.items():
        if len(pairs) > 1:
            a, t = (np.mean([p[i] for p in pairs], axis=0) for i in (0, 1))
            print(f"| {name} | mean of {len(pairs)} | {a.mean():.4f} | {t.mean():.4f} | {interval(a, t, 0)} |")


def interval(a: np.ndarray, t: np.ndarray, seed: int) -> str:
    diff, low, high = paired_bootstrap(a, t, 2000, seed)
    return f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"


if __name__ == "__main__":
    main()
