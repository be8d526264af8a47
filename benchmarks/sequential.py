"""The sequential table: models x HR@10 / NDCG@10 x fit seconds under leave-last-out, on ML-100K
(`u.data`, with timestamps) and the full Online Retail log.

    .venv/bin/python benchmarks/sequential.py
    .venv/bin/python benchmarks/sequential.py --datasets OnlineRetail --models transitions ease
    .venv/bin/python benchmarks/sequential.py --seeds 0 1 2 3 4 --models seqgan
    .venv/bin/python benchmarks/sequential.py --models seqgan --set model.adversarial=false
    .venv/bin/python benchmarks/sequential.py --set prepare.repeats=all --set prepare.exclude_seen=false
    .venv/bin/python benchmarks/sequential.py --models seqgan --time-epochs 3   # seconds per epoch of each stage

Beside the sequence family, its cross-entropy twin (its first stage, what `model.adversarial=false`
keeps with the same seed) and its adversarial stage's best on validation (what it gives where it is
kept) are scored, with paired bootstraps over test users of the NDCG@10 differences, unless the twin
is what was asked for.

The protocol (issue 17's): each user's items in time order (ties in file order), a repeated item kept
where the user first chose it, users with at least 5 items; test = each user's last item,
validation = the one before; full ranking over all items with the user's earlier items filtered. With
one test item per user, HR@10 is recall@10. Every choice (EASE's lambda) is made on the validation
item alone; the test item is scored once. `--set prepare.repeats=all` keeps re-buys (a test item can
be one the user had), and `--set prepare.exclude_seen=false` ranks what users have too. Reads
../shared/data (never copied into the repo); a data set that is absent is skipped with a message.
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
            "prepare.min_interactions_to_split=3", "data.non_product_codes="]
"""The protocol's settings (Online Retail's charges such as postage kept, as in the issue's reference)."""
ON_VALIDATION = {"ease": ["model.ease.tuning_repeats=1"], "itemknn": ["model.itemknn.tuning_repeats=1"]}
"""Families that tune over random carve-outs by default choose on the validation item here instead."""


def load(name: str, data_dir: Path, overrides: list[str]) -> Dataset | None:
    relative, fmt = SOURCES[name]
    path = data_dir / relative
    if not path.exists():
        print(f"skipped {name}: {path} is absent (MovieLens is not redistributed with genrec)")
        return None
    cfg = load_config("default", [*PROTOCOL, *(o for o in overrides if o.startswith(("data.", "prepare.")))])
    interactions, _ = gdata.to_interactions(gdata.read_raw(path, fmt, cfg.data), cfg.data)
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
    parser.add_argument("--time-epochs", type=int, default=0, metavar="N",
                        help="only time N epochs of each stage of the sequence family (its trainers alone, from the "
                             "first seed, without validation) and print the seconds of each")
    args = parser.parse_args(argv)
    options = FitOptions(on_epoch=lambda epoch, record: print(f"    epoch {epoch}: {record}", flush=True)) \
        if args.progress else None

    rows, twins = [], []
    for name in args.datasets:
        data = load(name, args.data_dir, args.overrides)
        if data is None:
            continue
        print(f"{name}: {data.stats['users']} users, {data.stats['items']} items, {data.stats['interactions']} "
              "interactions", flush=True)
        if args.time_epochs:
            time_epochs(data, load_config("default", overrides_for("seqgan", [f"train.seed={args.seeds[0]}",
                                                                               *args.overrides])), args.time_epochs)
            continue
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
                    stages = (scored(model.twin_, data, cfg), scored(model.adversarial_, data, cfg))
                    twins.append((name, seed, result, *stages))
            rows.append((name, family, results))

    if not rows:
        return
    print("\n| data | model | NDCG@10 | HR@10 | fit s | seeds |\n|---|---|---|---|---|---|")
    for name, family, results in rows:
        def cell(values: list[float]) -> str:
            return f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")

        ndcg, hr, fit = (list(c) for c in zip(*results))
        print(f"| {name} | {family} | {cell(ndcg)} | {cell(hr)} | {statistics.mean(fit):.1f} | {len(results)} |")
    if twins:
        print_twins(twins)
    sys.stdout.flush()


def time_epochs(data: Dataset, cfg, epochs: int) -> None:
    """Seconds of each of `epochs` epochs of the cross-entropy stage, then of the adversarial stage
    started from it, on the training split, as `fit` runs them (the allocator policy included)."""
    from genrec.allocator import keep_freed_memory
    from genrec.models.families import make_model
    from genrec.models.seqgan.trainer import AdversarialTrainer, SeqTrainer
    from genrec.training import SELECT, resolve_device

    def timed(stage: str, trainer) -> None:
        seconds = []
        for _ in range(epochs):
            start = time.perf_counter()
            trainer.train_epoch()
            seconds.append(time.perf_counter() - start)
        print(f"  seqgan {stage} epoch on {device} (max_len {config.max_len}): "
              + ", ".join(f"{t:.2f}" for t in seconds) + " s", flush=True)

    keep_freed_memory()
    config, device = make_model(cfg).config, resolve_device(cfg.train.device)
    histories = data.histories(splits=SELECT)
    first = SeqTrainer(config, histories, device, cfg.train.seed)
    timed("cross-entropy", first)
    timed("adversarial", AdversarialTrainer(config, histories, device, cfg.train.seed, None, first.kept()))


def scored(encoder, data: Dataset, cfg):
    """One of the stages of an adversarial fit, scored on the test split as the model is."""
    return evaluate_scores(lambda users: score_histories(encoder, data.histories(users)),
                           data.seen("train", "validation"), data.test, cfg.eval.ks)


def print_twins(twins: list) -> None:
    """On the test split, against the cross-entropy twin: the model kept (the adversarial stage only
    where validation chose it) and the adversarial stage's own best on validation, kept or not; per
    seed, and each user's NDCG@10 averaged over the seeds, with a paired bootstrap over users of the
    difference."""
    print("\n| data | seed | twin NDCG@10 | kept model | kept - twin [95% interval] | adversarial stage's best | "
          "its - twin [95% interval] |\n|---|---|---|---|---|---|---|")
    by_data: dict[str, list] = {}
    for name, seed, kept, twin, stage in twins:
        assert np.array_equal(kept.users, twin.users) and np.array_equal(stage.users, twin.users)
        row = tuple(r.per_user["ndcg@10"] for r in (kept, twin, stage))
        print_row(name, str(seed), *row, seed)
        by_data.setdefault(name, []).append(row)
    for name, rows in by_data.items():
        if len(rows) > 1:
            print_row(name, f"mean of {len(rows)}", *(np.mean([r[i] for r in rows], axis=0) for i in range(3)), 0)


def print_row(name: str, seed: str, kept: np.ndarray, twin: np.ndarray, stage: np.ndarray, bootstrap_seed: int) -> None:
    print(f"| {name} | {seed} | {twin.mean():.4f} | {kept.mean():.4f} | {interval(kept, twin, bootstrap_seed)} | "
          f"{stage.mean():.4f} | {interval(stage, twin, bootstrap_seed)} |")


def interval(a: np.ndarray, t: np.ndarray, seed: int) -> str:
    diff, low, high = paired_bootstrap(a, t, 2000, seed)
    return f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"


if __name__ == "__main__":
    main()
