"""Fit CFGAN on a CFGAN-authors' split and print quality and speed.

    .venv/bin/python benchmarks/cfgan_fit.py                        # ML-100K, default preset, CPU/CUDA auto
    .venv/bin/python benchmarks/cfgan_fit.py --seeds 0 1 2 3 4      # mean ± sd over seeds
    .venv/bin/python benchmarks/cfgan_fit.py --set model.device=cuda --split Ciao
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

from genrec.config import load_config
from genrec.data import load_interactions
from genrec.evaluation import evaluate_scores
from genrec.models import make_model
from genrec.models.pop import Popularity
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
    known = data.known
    pop = evaluate_scores(Popularity().fit(data.train).score, known, data.test, cfg.eval.ks).metrics
    print(f"{args.split}: {data.n_users} users, {data.n_items} items, train {data.train.nnz}, "
          f"validation {data.validation.nnz}, test {data.test.nnz}; popularity ndcg@20 {pop['ndcg@20']:.4f}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
    if args.time_epochs:
        time_epochs(cfg, data.train, args.time_epochs)
        return
    scores = []
    for seed in args.seeds:
        model_cfg = load_config(args.config, args.overrides + [f"model.seed={seed}"]).model
        start = time.perf_counter()
        model = make_model(model_cfg).fit(data.train, data.validation)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        metrics = evaluate_scores(lambda u: model.score_known(known, u), known, data.test, cfg.eval.ks).metrics
        evaluation = time.perf_counter() - start
        epochs = len(getattr(model, "history_", [])) or 1
        scores.append(metrics["ndcg@20"])
        start_score = f", validation ndcg@20 at the EASE start {model.init_score_:.4f}" if model.init_score_ else ""
        print(f"seed {seed}: device {getattr(model, 'trained_on_', 'cpu')}, {epochs} epochs "
              f"(best {model.best_epoch_}, validation ndcg@20 {model.best_score_:.4f}{start_score}"
              f"{', then refit' if model.chosen_params_.get('refit') else ''}"
              f"{blend_note(model.chosen_params_)}), fit {fit:.1f} s, "
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
    from genrec.models.cfgan import CFGANTrainer, resolve_device

    model = make_model(cfg.model)
    matrix = train.tocsr().astype("float32")
    trainer = CFGANTrainer(model, matrix if model.mode == "user" else matrix.T.tocsr(), resolve_device(model.device))
    trainer.epoch()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        trainer.epoch()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    print(f"{(time.perf_counter() - start) / n:.3f} s/epoch over {n} epochs ({model.mode}-based, "
          f"batch G {model.batch_g} / D {model.batch_d}, {model.g_steps} G and {model.d_steps} D passes per epoch)")


if __name__ == "__main__":
    sys.exit(main())
