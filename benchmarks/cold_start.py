"""The cold-start table: models x warm / cold Recall@20 and NDCG@20 x fit seconds, on ML-100K (genres
and release year from `u.item`) and the full Online Retail log (descriptions and prices), with a
time cutoff; cold items are those first seen at or after it.

    .venv/bin/python benchmarks/cold_start.py
    .venv/bin/python benchmarks/cold_start.py --datasets ML100K --models seqgan --seeds 0 1 2

The data goes through the training flow's own checks and preparation (`prepare.split=time` at the
cutoff: everything before it trains, each user's last interaction before it validates, everything
after it is test). Warm items are ranked among warm items and cold among cold, for the test users
with a history before the cutoff. Beside each attribute-aware generator its id-only twin is fitted
with the same seed, and a paired bootstrap over users of the warm NDCG@20 difference is printed.
Reads ../shared/data (never copied into the repo); a data set that is absent is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from genrec import pipeline
from genrec.config import load_config
from genrec.gating import paired_bootstrap
from genrec.validation import DataValidator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {"ML100K": ("ml-100k/u.data", "1998-02-01"), "OnlineRetail": ("online-retail/online_retail.csv.gz",
                                                                         "2011-09-01")}
"""Each data set and the cutoff that leaves at least 5% of its items cold (6.9% and 7.4%)."""
GENERATORS = ("seqgan", "cfgan")
"""Families with an attribute switch: each runs with `model.attributes=true` beside its id-only twin."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--models", nargs="+", default=["attribute-pop", "content-knn", "seqgan"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE for every model")
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    args = parser.parse_args(argv)

    rows = []
    for name in args.datasets:
        relative, cutoff = SOURCES[name]
        path = args.data_dir / relative
        if not path.exists():
            print(f"skipped {name}: {path} is absent (MovieLens is not redistributed with genrec)")
            continue
        protocol = ["prepare.split=time", f"prepare.cutoff={cutoff}"]
        # `features.*` settings shape the data's feature rows, which every model then reads.
        cfg = load_config("default", [*protocol, *(o for o in args.overrides if o.startswith("features."))])
        with tempfile.TemporaryDirectory() as docs:
            data = pipeline.prepare(pipeline.validate(path, cfg, DataValidator(Path(docs))), cfg)
        print(f"{name}: {data.n_users} users, {data.n_items} items, {len(data.cold_items)} cold at {cutoff}; "
              f"attributes {data.features.report()}", flush=True)
        users, bound = attribute_bound(data)
        print(f"  {users} test users with a cold item; the most any model that knows a cold item by its "
              f"attributes alone can reach: cold R@20 {bound:.4f}", flush=True)
        for family in args.models:
            variants = ([("attributes", ["model.attributes=true"]), ("id-only", [])] if family in GENERATORS
                        else [("", [])])
            for seed in args.seeds:
                per_user = {}
                for label, extra in variants:
                    run = load_config("default", [*protocol, f"model.name={family}", f"train.seed={seed}", *extra,
                                                  *args.overrides])
                    start = time.perf_counter()
                    model = pipeline.train(data, run, None)
                    fit = time.perf_counter() - start
                    groups = pipeline.evaluate_cold_start(model, data, run)
                    warm, cold = groups["warm"].metrics, groups["cold"].metrics
                    title = f"{family} {label}".strip()
                    print(f"  {title} seed {seed}: warm R@20 {warm['recall@20']:.4f} NDCG@20 {warm['ndcg@20']:.4f} | "
                          f"cold R@20 {cold['recall@20']:.4f} NDCG@20 {cold['ndcg@20']:.4f} | fit {fit:.1f}s "
                          f"{model.chosen_params_}", flush=True)
                    rows.append((name, title, seed, warm, cold, fit))
                    per_user[label] = groups
                if len(per_user) == 2:
                    for group in ("warm", "cold"):
                        a, b = (per_user[v][group].per_user["ndcg@20"] for v in ("attributes", "id-only"))
                        diff, low, high = paired_bootstrap(a, b, 2000, seed)
                        print(f"  {family} seed {seed}, {group} NDCG@20 attributes - id-only: {diff:+.4f} "
                              f"[{low:+.4f}, {high:+.4f}]", flush=True)

    print("\n| data | model | warm R@20 | warm NDCG@20 | cold R@20 | cold NDCG@20 | fit s | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((r[0], r[1]) for r in rows):
        mine = [r for r in rows if (r[0], r[1]) == key]

        def cell(values: list[float]) -> str:
            return f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")

        print(f"| {key[0]} | {key[1]} | {cell([r[3]['recall@20'] for r in mine])} | "
              f"{cell([r[3]['ndcg@20'] for r in mine])} | {cell([r[4]['recall@20'] for r in mine])} | "
              f"{cell([r[4]['ndcg@20'] for r in mine])} | {statistics.mean(r[5] for r in mine):.1f} | {len(mine)} |")


def attribute_bound(data, k: int = 20) -> tuple[int, float]:
    """The test users with a cold item, and the highest mean cold Recall@k a model can expect when it
    scores a cold item from its attributes alone: cold items with the same feature row get the same
    score, so it can only rank such groups, best first by the share of the user's held-out items
    in them, and within a group it finds them by the luck of its ties (expected over it)."""
    cold = np.asarray(data.cold_items)
    _, group = np.unique(data.features.matrix.tocsr()[cold].toarray(), axis=0, return_inverse=True)
    group = group.ravel()
    sizes = np.bincount(group)
    column = np.full(data.n_items, -1)
    column[cold] = np.arange(len(cold))
    test, recalls = data.test.tocsr(), []
    for user in np.flatnonzero(np.diff(data.known.indptr) > 0):
        held = column[test.indices[test.indptr[user] : test.indptr[user + 1]]]
        held = held[held >= 0]
        if not len(held):
            continue
        hits = np.bincount(group[held], minlength=len(sizes))
        left, expected = k, 0.0
        for g in np.argsort(-hits / sizes, kind="stable"):
            if left <= 0 or not hits[g]:
                break
            taken = min(left, sizes[g])
            expected, left = expected + taken * hits[g] / sizes[g], left - taken
        recalls.append(expected / len(held))  # recall as genrec.evaluation counts it
    return len(recalls), float(np.mean(recalls)) if recalls else 0.0


if __name__ == "__main__":
    main()
