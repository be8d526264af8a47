"""Fit CFGAN on a CFGAN-authors' split and print quality and speed.

    .venv/bin/python benchmarks/cfgan_fit.py                        # ML-100K, default preset, CPU/CUDA auto
    .venv/bin/python benchmarks/cfgan_fit.py --seeds 0 1 2 3 4      # mean ± sd over seeds
    .venv/bin/python benchmarks/cfgan_fit.py --set train.device=cuda --split Ciao
    .venv/bin/python benchmarks/cfgan_fit.py --config cfgan-ml100k                  # the authors' setup

Reads ../shared/data/cfgan-splits (never copied into the repo); exits 0 with a message if absent.
Validation (early stopping) is carved out of the training file; the test file is only scored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from genrec import pipeline
from genrec.config import load_config
from genrec.data import load_interactions
from genrec.preprocessing import from_split

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cfgan-splits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="ML100K", help="ML100K or Ciao")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--config", default="default")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-epochs", type=int, default=0, metavar="N",
                        help="only time N training epochs (after one warm-up), no validation, no fit")
    args = parser.parse_args()

    train_path, test_path = args.data_dir / f"{args.split}.train", args.data_dir / f"{args.split}.test"
    if not train_path.exists():
        print(f"skipped: {train_path} is absent (MovieLens/Ciao are not redistributed with genrec)")
        return
    cfg = load_config(args.config, args.overrides)
    data = from_split(load_interactions(train_path, "cfgan"), load_interactions(test_path, "cfgan"), cfg.prepare)
    pop = pipeline.popularity_baseline(data, data, cfg).metrics
    print(f"{args.split}: {data.n_users} users, {data.n_items} items, train {data.train.nnz}, "
          f"validation {data.validation.nnz}, test {data.test.nnz}; popularity ndcg@20 {pop['ndcg@20']:.4f}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
    if args.time_epochs:
        time_epochs(cfg, data.train, args.time_epochs)
        return
    scores = []
    for seed in args.seeds:
        seeded = load_config(args.config, args.overrides + [f"train.seed={seed}"])
        start = time.perf_counter()
        model = pipeline.train(data, seeded)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        metrics = pipeline.evaluate(model, data, seeded).metrics
        evaluation = time.perf_counter() - start
        loop = model.training_
        scores.append(metrics["ndcg@20"])
        trained = (f"{len(loop.history)} epochs (best {loop.best_epoch}, validation ndcg@20 {loop.best_score:.4f}"
                   f"{', then refit' if loop.refit else ''})") if loop is not None else "no training loop"
        print(f"seed {seed}: {trained}{blend_note(model.chosen_params_)}, fit {fit:.1f} s, "
              f"eval {evaluation:.2f} s; ndcg@20 {metrics['ndcg@20']:.4f}, p@20 {metrics['precision@20']:.4f}, "
              f"r@20 {metrics['recall@20']:.4f}, mrr@20 {metrics['mrr@20']:.4f}, ndcg@5 {metrics['ndcg@5']:.4f}, "
              f"p@5 {metrics['precision@5']:.4f}", flush=True)
    if len(scores) > 1:
        print(f"ndcg@20 over {len(scores)} seeds: {statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}")


def blend_note(chosen: dict) -> str:
    if "blend_weight" not in chosen:
        return ""
    return f"; blended with EASE (lambda {chosen['ease_lambda']}), generator weight {chosen['blend_weight']}"


def time_epochs(cfg, train, n: int) -> None:
    """Seconds per training epoch (D and G passes only), the figure the speed targets are about."""
    from genrec.models.cfgan.trainer import CFGANTrainer
    from genrec.training import resolve_device

    section = cfg.model.section("cfgan")
    rows = train if section.mode == "user" else train.T.tocsr()
    trainer = CFGANTrainer(section, rows, resolve_device(cfg.train.device), cfg.train.seed)
    trainer.train_epoch()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        trainer.train_epoch()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    print(f"{(time.perf_counter() - start) / n:.3f} s/epoch over {n} epochs ({section.mode}-based, "
          f"batch G {section.batch_g} / D {section.batch_d}, {section.g_steps} G and {section.d_steps} D passes per epoch)")


if __name__ == "__main__":
    sys.exit(main())
