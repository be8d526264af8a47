"""The one training loop of every iterative (neural) model family.

A family supplies a `Trainer` (its networks, optimisers and random generators, one epoch at a time);
`train_loop` owns everything around it: epochs, early stopping on the validation split, the choice
of the best epoch, an optional refit on train + validation for that many epochs, a checkpoint every
`checkpoint_every` epochs (atomic, so a kill never leaves half a file), resume from that checkpoint,
progress (a bar at a terminal, a log line every `log_every` epochs) and the seed every trainer is
built from. Under torchrun it joins the process group first (genrec/distributed.py): the trainers
then train data-parallel, and rank 0 alone writes checkpoints.

Early stopping counts its patience only once the model ranks better than popularity on validation:
below that it has not started learning (a GAN on sparse data can take hundreds of epochs to start).
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

import numpy as np

from genrec.crashpoints import crash_point
from genrec.errors import TrainingDivergedError, UsageError
from genrec.ranges import at_least

if TYPE_CHECKING:
    from genrec.dataset import Dataset

log = logging.getLogger(__name__)

VALIDATION_METRIC = "ndcg@20"
# 2: the sampled CFGAN trainer's item tables keep their own Adam moments (`rows.Optimisers`);
# 3: so does the sequence family's with a sampled softmax; 4: and its trainer keeps a moving average.
CHECKPOINT_FORMAT = 4
SELECT = ("train",)
"""The splits the selection run learns from (validated on `validation`)."""
REFIT = ("train", "validation")
"""The splits a refit learns from."""


@dataclass(frozen=True)
class TrainConfig:
    """How iterative families are trained (the loop's settings; every family shares them)."""

    epochs: int = 300
    """Most epochs to train (early stopping may end sooner)."""
    patience: int = 30
    """Stop after this many epochs without a better validation NDCG@20, counted once the model
    ranks better than popularity on validation."""
    patience_interactions: int = 2_000_000
    """The patience as training interactions read: on a split of n interactions the loop waits
    min(`patience`, ceil(this / n)) epochs, so that a large split, an epoch of which is many more
    steps, waits about as many interactions as a small one rather than as many epochs. 2M is above
    the longest wait between two gains on validation measured for `default` on ML-100K (6 epochs,
    0.43M interactions), Online Retail (9 epochs, 1.7M) and Ciao (12 epochs, 0.15M), which keep
    28, 11 and 30 epochs; 1.9M interactions wait 2 epochs, 9.4M wait 1 (docs/measured.md).
    0: `patience` epochs whatever the size."""
    seed: int = 0
    """Seed of every random generator a trainer draws from (weights, batches, masks)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where networks train: `auto` takes CUDA when present; fitted models are kept on the CPU."""
    refit: bool = False
    """Once validation has chosen the number of epochs, train again from the start on train +
    validation for that many and keep that model (as the tuned baselines refit)."""
    checkpoint_every: int = 10
    """Write a checkpoint every this many epochs (and when a phase ends)."""
    log_every: int = 10
    """Log one progress line every this many epochs (and after any epoch that ends a minute or more
    after the last line)."""
    max_minutes: float = 0.0
    """Stop choosing epochs once this many minutes of training have passed (the best epoch so far
    is kept; a refit then trains that many); 0: no limit."""
    keep_checkpoints: int = 5
    """How many finished runs' checkpoints to keep under GENREC_HOME/checkpoints: once a run has
    registered its model, the checkpoint files of older finished runs go (0: its own too); a run in
    progress is never touched, and a crashed one (resumed by the next run on its data and settings)
    stays until this many newer runs have finished (see `genrec.pipeline.prune_checkpoints`)."""

    def __post_init__(self) -> None:
        at_least(self, 1, "epochs", "patience", "checkpoint_every", "log_every")
        at_least(self, 0, "keep_checkpoints", "max_minutes", "patience_interactions")

    def patience_for(self, interactions: int) -> int:
        """The epochs without a gain the loop waits on a training split of `interactions`."""
        if not self.patience_interactions or interactions <= 0:
            return self.patience
        return max(1, min(self.patience, math.ceil(self.patience_interactions / interactions)))


@dataclass
class FitOptions:
    """What a caller (the flow, the CLI, a benchmark) asks of one fit beyond the config."""

    checkpoint: Path | None = None
    """The checkpoint file; None: no checkpoints."""
    resume: bool = False
    """Continue from `checkpoint` where it exists (its `meta` must match this fit's)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Facts written into every checkpoint (config, data fingerprint); its `digest` must match for a
    resume."""
    on_epoch: Callable[[int, dict[str, float]], None] | None = None
    """Called after every epoch with its record (losses, validation score, seconds)."""
    log: logging.Logger | logging.LoggerAdapter | None = None
    """Where the progress lines go (default: this module's logger)."""
    progress: bool = False
    """Show a progress bar (only when stderr is a terminal)."""
    to_beat: float | None = None
    """A validation score this fit is kept only above (an earlier stage's): patience then counts the
    epochs since one scored above both it and this fit's best so far."""


class Trainer(Protocol):
    """One family's training state: networks, optimisers, random generators."""

    def train_epoch(self) -> dict[str, float]:
        """One epoch; the mean of each loss."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where it stands."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def kept(self) -> dict[str, Any]:
        """The weights that are validated and kept (a copy)."""

    def load_kept(self, kept: dict[str, Any]) -> None: ...

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores of the users of the matrix it trains on, by the current kept weights, conditioned
        on that matrix."""


@dataclass
class LoopResult:
    history: list[dict[str, float]]
    best_epoch: int
    """The epoch validation chose (the last one run when there is no validation)."""
    best_score: float | None
    floor: float | None
    """Popularity's validation score, which patience waits for the model to beat."""
    selected: dict[str, Any]
    """The selection run's kept weights at `best_epoch` (trained on the training split)."""
    kept: dict[str, Any]
    """What the model keeps: `selected`, or the refit's weights after `best_epoch` epochs."""
    refit: bool
    resumed_at: int | None = None
    """The epoch the fit resumed after, when it resumed from a checkpoint."""


def resolve_device(device: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("train.device=cuda, but no CUDA device is available here: use train.device=auto or cpu.")
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")  # one GPU per torchrun process
    return torch.device(device)


def validation_score(score_users: Callable[[np.ndarray], np.ndarray], data: "Dataset") -> float:
    """NDCG@20 on the validation split of `score_users(users)` (at most `data.validation_users` of
    its users), scores conditioned on the training split alone."""
    from genrec.evaluation import evaluate_scores

    result = evaluate_scores(score_users, data.seen("train"), data.scored_validation,
                             ks=(int(VALIDATION_METRIC.split("@")[1]),))
    return result.metrics[VALIDATION_METRIC]


def popularity_floor(data: "Dataset") -> float:
    """Validation NDCG@20 of ranking every user's unseen items by their popularity in train."""
    counts = np.asarray(data.train.sum(axis=0)).ravel().astype(np.float32)
    return validation_score(lambda users: np.broadcast_to(counts, (len(users), len(counts))), data)


class _Checkpoints:
    """Atomic writes and checked reads of one checkpoint file."""

    def __init__(self, path: Path | None, meta: dict[str, Any]):
        self.path = path
        self.meta = meta

    def write(self, state: dict[str, Any]) -> None:
        from genrec.distributed import current

        if self.path is None or current().rank != 0:  # every rank holds the same state: one writes it
            return
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        # Serialised in memory first: torch.save straight to a full disk fails with a RuntimeError that
        # hides the ENOSPC, while a plain write raises the OSError that says what is wrong.
        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "meta": self.meta, **state}, buffer)
        try:
            tmp.write_bytes(buffer.getbuffer())
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.path)

    def read(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.is_file():
            return None
        import torch

        state = torch.load(self.path, map_location="cpu", weights_only=False)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise UsageError(f"{self.path} is not a checkpoint this genrec can resume from.")
        if state.get("meta", {}).get("digest") != self.meta.get("digest"):
            raise UsageError(f"{self.path} was written for other data or another config: it cannot be resumed here.")
        return state


def train_loop(new_trainer: Callable[[tuple[str, ...]], Trainer], data: "Dataset", cfg: TrainConfig,
               options: FitOptions | None = None, name: str = "model") -> LoopResult:
    """Train `new_trainer(SELECT)` (a trainer of the training split) epoch by epoch, choose the epoch
    on validation, refit `new_trainer(REFIT)` if asked; checkpoint and resume as `options` say. A
    trainer is built from the names of the splits it learns from, so that a family reads them as it
    needs (a matrix, ordered histories)."""
    from genrec.allocator import keep_freed_memory
    from genrec.distributed import init_from_env

    options = options or FitOptions()
    out = options.log or log
    keep_freed_memory()  # a step's large tensors reuse the last step's pages
    init_from_env(resolve_device(cfg.device))
    store = _Checkpoints(options.checkpoint, options.meta)
    saved = store.read() if options.resume else None
    has_validation = data.validation.nnz > 0
    if saved is not None:
        out.info("%s: resuming from %s (%s phase, epoch %d)", name, store.path, saved["phase"], saved["epoch"])

    # --- selection: the training split, validated every epoch ------------------------------------
    trainer = new_trainer(SELECT)
    history: list[dict[str, float]] = []
    floor = popularity_floor(data) if has_validation else None
    best_epoch, best_score, selected = 0, -math.inf, trainer.kept()
    to_beat = -math.inf if options.to_beat is None else options.to_beat
    start_epoch = 1
    resumed_at = None
    if saved is not None:
        history, floor = saved["history"], saved["floor"]
        best_epoch, best_score, selected = saved["best_epoch"], saved["best_score"], saved["selected"]
        resumed_at = saved["epoch"]
        if saved["phase"] == "select":
            trainer.load_state_dict(saved["trainer"])
            start_epoch = saved["epoch"] + 1
        else:
            start_epoch = cfg.epochs + 1  # selection is over
    done = saved is not None and saved.get("selection_done", False)
    patience = cfg.patience_for(data.train.nnz)
    if patience < cfg.patience:
        out.info("%s: patience %d epochs (train.patience_interactions=%s over %s training interactions)", name,
                 patience, f"{cfg.patience_interactions:,}", f"{data.train.nnz:,}")
    bar = _bar(cfg.epochs, name, options.progress, initial=start_epoch - 1)
    clock = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    last_line = history[-1]["seconds"] if history else 0.0
    try:
        epoch = start_epoch - 1
        for epoch in range(start_epoch, cfg.epochs + 1):
            if done:
                break
            record = {"epoch": epoch, **_finite(trainer.train_epoch(), name)}
            if has_validation:
                score = record["val_" + VALIDATION_METRIC] = validation_score(trainer.score_users, data)
                if score > best_score:
                    best_epoch, best_score, selected = epoch, score, trainer.kept()
            else:
                best_epoch, selected = epoch, trainer.kept()
            record["seconds"] = time.perf_counter() - clock
            history.append(record)
            if options.on_epoch is not None:
                options.on_epoch(epoch, record)
            started = has_validation and best_score > floor
            out_of_time = cfg.max_minutes > 0 and record["seconds"] >= 60 * cfg.max_minutes
            # Patience counts from the last epoch above both `to_beat` and every epoch before it.
            done = (started and epoch - _last_gain(history, to_beat) >= patience) or epoch == cfg.epochs or out_of_time
            if _report(out, bar, name, cfg, epoch, record, best_epoch, best_score, last_line):
                last_line = record["seconds"]
            if out_of_time and epoch < cfg.epochs:
                out.info("%s: train.max_minutes=%s reached after epoch %d (best %d)", name, cfg.max_minutes, epoch,
                         best_epoch)
            if epoch % cfg.checkpoint_every == 0 or done:
                store.write({"phase": "select", "epoch": epoch, "selection_done": done, "trainer": trainer.state_dict(),
                             "history": history, "floor": floor, "best_epoch": best_epoch, "best_score": best_score,
                             "selected": selected})
                crash_point(f"checkpoint:{epoch}")
            if done and epoch < cfg.epochs and not out_of_time:
                out.info("%s: early stop at epoch %d (best %d, validation %s %.4f)", name, epoch, best_epoch,
                         VALIDATION_METRIC, best_score)
    finally:
        bar.close()
    if has_validation and history and best_score <= floor:
        out.warning("%s never ranked better than popularity on validation (best %s %.4f, popularity %.4f) in %d "
                    "epochs: more epochs or another preset may help.", name, VALIDATION_METRIC, best_score, floor,
                    len(history))
    trainer.load_kept(selected)

    # --- refit: train + validation, for the chosen number of epochs ------------------------------
    refit = cfg.refit and has_validation
    kept = selected
    if refit:
        twin = new_trainer(REFIT)
        first = 1
        if saved is not None and saved["phase"] == "refit":
            twin.load_state_dict(saved["trainer"])
            first = saved["epoch"] + 1
        out.info("%s: refit on train + validation for %d epochs", name, best_epoch)
        for epoch in range(first, best_epoch + 1):
            _finite(twin.train_epoch(), name)
            if epoch % cfg.checkpoint_every == 0 or epoch == best_epoch:
                store.write({"phase": "refit", "epoch": epoch, "trainer": twin.state_dict(), "history": history,
                             "floor": floor, "best_epoch": best_epoch, "best_score": best_score, "selected": selected,
                             "selection_done": True})
            if epoch % cfg.log_every == 0:
                out.info("%s refit: epoch %d/%d", name, epoch, best_epoch)
        kept = twin.kept()
    return LoopResult(history=history, best_epoch=best_epoch, best_score=best_score if has_validation else None,
                      floor=floor, selected=selected, kept=kept, refit=refit, resumed_at=resumed_at)


def _finite(losses: dict[str, float], name: str) -> dict[str, float]:
    if not all(math.isfinite(v) for v in losses.values()):
        raise TrainingDivergedError(f"{name} training diverged: losses {losses}.")
    return losses


def _bar(total: int, name: str, progress: bool, initial: int):
    from tqdm.auto import tqdm

    # disable=None: tqdm shows the bar only when its stream is a terminal.
    return tqdm(total=total, initial=initial, desc=name, unit="epoch", disable=None if progress else True)


def _last_gain(history: list[dict[str, float]], to_beat: float) -> int:
    """The last epoch of `history` that scored above `to_beat` and every epoch before it (0: none)."""
    gained, best = 0, to_beat
    for record in history:
        if record["val_" + VALIDATION_METRIC] > best:
            gained, best = record["epoch"], record["val_" + VALIDATION_METRIC]
    return gained


def _report(out, bar, name: str, cfg: TrainConfig, epoch: int, record: dict[str, float], best_epoch: int,
            best_score: float, last_line: float) -> bool:
    """Move the bar; log a line every `log_every` epochs or a minute after `last_line` (seconds
    into training). Whether it logged."""
    shown = {k: f"{v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds")}
    bar.update(1)
    bar.set_postfix(shown)
    if epoch % cfg.log_every != 0 and record["seconds"] - last_line < 60:
        return False
    best = f"; best {best_score:.4f} at epoch {best_epoch}" if math.isfinite(best_score) else ""
    out.info("%s epoch %d/%d: %s (%.0f s)%s", name, epoch, cfg.epochs,
             ", ".join(f"{k} {v}" for k, v in shown.items()), record["seconds"], best)
    return True


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a state dict (tensors cloned), for keeping the weights of an epoch."""
    return copy.deepcopy(state)
