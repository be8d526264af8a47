"""CFGAN (Chae et al., CIKM 2018): a conditional GAN whose generator outputs a user's preferences.

User-based mode: the condition is the user's purchase vector e_u. The discriminator tells real
vectors from generated ones masked to e_u + k_u (partial masking, PM: k_u is a random share of the
user's unobserved items); the generator also pushes a random share of unobserved items towards zero
(zero reconstruction, ZR). ZP uses both. Early stopping on validation NDCG@20 (never on test).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from genrec.errors import NotFittedError, TrainingDivergedError
from genrec.models.base import EpochCallback, Recommender
from genrec.models.networks import Discriminator, Generator, l2_penalty

log = logging.getLogger(__name__)

SCHEMES = ("ZR", "PM", "ZP")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def progress_enabled(requested: bool) -> bool:
    """Progress bars only for a person at a terminal, never in CI."""
    return requested and sys.stderr.isatty() and not os.environ.get("CI")


class CFGANTrainer:
    """One adversarial epoch at a time over a users x items CSR matrix, densified per batch."""

    def __init__(self, model: "CFGAN", train: sp.csr_matrix, device: torch.device):
        self.m = model
        self.train = train
        self.device = device
        n_items = train.shape[1]
        self.generator = Generator(n_items, model.hidden_g, model.layers_g).to(device)
        self.discriminator = Discriminator(n_items, model.hidden_d, model.layers_d).to(device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=model.lr_g)
        # An exponential moving average of G's weights smooths the adversarial noise; it is what
        # validation sees and what is kept (ema_decay=0: the raw generator, as published).
        self.average = (
            torch.optim.swa_utils.AveragedModel(
                self.generator, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(model.ema_decay)
            )
            if model.ema_decay
            else None
        )
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=model.lr_d)
        # Users with no training interaction carry no signal for either network.
        self.users = np.flatnonzero(np.diff(train.indptr) > 0)
        self.rng = np.random.default_rng(model.seed)

    def _batch(self, rows: np.ndarray) -> torch.Tensor:
        dense = self.train[rows].toarray().astype(np.float32, copy=False)
        return torch.from_numpy(dense).to(self.device, non_blocking=True)

    def _masks(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """PM mask (e_u + k_u) and ZR mask, sampled in one vectorised draw per batch."""
        unobserved = real == 0
        scheme = self.m.scheme
        if scheme in ("PM", "ZP"):
            k_u = (torch.rand_like(real) < self.m.pm_ratio) & unobserved
            pm_mask = real + k_u.float()
        else:
            pm_mask = real
        if scheme in ("ZR", "ZP"):
            zr_mask = ((torch.rand_like(real) < self.m.zr_ratio) & unobserved).float()
        else:
            zr_mask = torch.zeros_like(real)
        return pm_mask, zr_mask

    def _batches(self, size: int):
        order = self.rng.permutation(self.users)
        for start in range(0, len(order), size):
            yield order[start : start + size]

    def _corrupt(self, condition: torch.Tensor) -> torch.Tensor:
        """The generator's training input with a share of the history dropped (denoising), if set."""
        if not self.m.input_dropout:
            return condition
        return F.dropout(condition, p=self.m.input_dropout, training=True)

    def step_d(self, real: torch.Tensor) -> float:
        # (1) Discriminator: maximise log D(e_u | c_u) + log(1 - D(G(c_u) * (e_u + k_u) | c_u))
        pm_mask, _ = self._masks(real)
        with torch.no_grad():
            fake = self.generator(self._corrupt(real)) * pm_mask
        d_real = self.discriminator(real, real)
        d_fake = self.discriminator(real, fake.detach())
        loss = (
            F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        )
        if self.m.reg_d:
            loss = loss + self.m.reg_d * l2_penalty(self.discriminator)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return float(loss.detach())

    def step_g(self, real: torch.Tensor) -> float:
        # (2) Generator: maximise log D(G(c_u) * (e_u + k_u) | c_u), minus alpha * sum_ZR r_uj^2
        pm_mask, zr_mask = self._masks(real)
        out = self.generator(self._corrupt(real))
        d_fake = self.discriminator(real, out * pm_mask)
        loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        if self.m.scheme in ("ZR", "ZP"):
            loss = loss + self.m.zr_coefficient * ((out**2) * zr_mask).sum(dim=1).mean()
        if self.m.reg_g:
            loss = loss + self.m.reg_g * l2_penalty(self.generator)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.average is not None:
            self.average.update_parameters(self.generator)
        return float(loss.detach())

    def epoch(self) -> dict[str, float]:
        """`d_steps` passes of D over the users, then `g_steps` passes of G; mean losses."""
        self.generator.train()
        self.discriminator.train()
        d_losses, g_losses = [], []
        for _ in range(self.m.d_steps):
            for rows in self._batches(self.m.batch_d):
                d_losses.append(self.step_d(self._batch(rows)))
        for _ in range(self.m.g_steps):
            for rows in self._batches(self.m.batch_g):
                g_losses.append(self.step_g(self._batch(rows)))
        losses = {"d_loss": float(np.mean(d_losses)), "g_loss": float(np.mean(g_losses))}
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingDivergedError(f"CFGAN training diverged: losses {losses}.")
        return losses


class CFGAN(Recommender):
    """CFGAN recommender (user-based), early-stopped on validation NDCG@20."""

    name = "cfgan"

    def __init__(
        self,
        hidden_g: int = 400,
        hidden_d: int = 125,
        layers_g: int = 1,
        layers_d: int = 1,
        scheme: str = "ZP",
        zr_ratio: float = 0.7,
        pm_ratio: float = 0.7,
        zr_coefficient: float = 0.03,
        input_dropout: float = 0.0,
        ema_decay: float = 0.0,
        reg_g: float = 0.001,
        reg_d: float = 0.0,
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        batch_g: int = 32,
        batch_d: int = 64,
        g_steps: int = 4,
        d_steps: int = 2,
        epochs: int = 300,
        patience: int = 30,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
    ):
        self.hidden_g = hidden_g
        self.hidden_d = hidden_d
        self.layers_g = layers_g
        self.layers_d = layers_d
        self.scheme = scheme
        self.zr_ratio = zr_ratio
        self.pm_ratio = pm_ratio
        self.zr_coefficient = zr_coefficient
        self.input_dropout = input_dropout
        self.ema_decay = ema_decay
        self.reg_g = reg_g
        self.reg_d = reg_d
        self.lr_g = lr_g
        self.lr_d = lr_d
        self.batch_g = batch_g
        self.batch_d = batch_d
        self.g_steps = g_steps
        self.d_steps = d_steps
        self.epochs = epochs
        self.patience = patience
        self.seed = seed
        self.device = device
        self.progress = progress

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> "CFGAN":
        from genrec.evaluation import evaluate_scores

        if self.scheme not in SCHEMES:
            raise ValueError(f"CFGAN scheme must be one of {SCHEMES}, got {self.scheme!r}.")
        torch.manual_seed(self.seed)
        device = resolve_device(self.device)
        train = train.tocsr().astype(np.float32)
        trainer = CFGANTrainer(self, train, device)
        self.train_ = train
        self._trainer = trainer
        self.generator_ = trainer.average.module if trainer.average is not None else trainer.generator
        self.trained_on_ = str(device)
        self.history_: list[dict[str, float]] = []
        self.best_epoch_ = 0
        self.best_score_ = -math.inf
        best_state = None
        has_validation = validation is not None and validation.nnz > 0

        bar = None
        if progress_enabled(self.progress):
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs, desc="CFGAN", unit="epoch", file=sys.stderr)
        start = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            record = {"epoch": epoch, **trainer.epoch()}
            if has_validation:
                self.generator_.eval()
                result = evaluate_scores(self.score, train, validation, ks=(20,))
                record["val_ndcg@20"] = result.metrics["ndcg@20"]
                if record["val_ndcg@20"] > self.best_score_:
                    self.best_score_ = record["val_ndcg@20"]
                    self.best_epoch_ = epoch
                    best_state = copy.deepcopy(self.generator_.state_dict())
            record["seconds"] = time.perf_counter() - start
            self.history_.append(record)
            if on_epoch is not None:
                on_epoch(epoch, record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds")})
            if has_validation and epoch - self.best_epoch_ >= self.patience:
                log.info("early stop at epoch %d (best %d, val ndcg@20 %.4f)", epoch, self.best_epoch_, self.best_score_)
                break
        if bar is not None:
            bar.close()
        if best_state is not None:
            self.generator_.load_state_dict(best_state)
        else:
            self.best_epoch_ = len(self.history_)
        self.chosen_params_ = {"epochs": self.best_epoch_}
        self.generator_.eval()
        self.generator_.to("cpu")  # served and pickled on the CPU, wherever it trained
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_trainer", None)  # optimisers and D are for checkpoints, not for serving
        return state

    def save_checkpoint(self, path, **meta) -> None:
        """Weights of both networks, optimiser states, hyperparameters, epoch, best validation
        metric and whatever `meta` adds (config, data fingerprint)."""
        if not hasattr(self, "_trainer"):
            raise NotFittedError("CFGAN has no training state to checkpoint: call fit first.")
        t = self._trainer
        torch.save(
            {
                "generator": self.generator_.state_dict(),
                "discriminator": t.discriminator.state_dict(),
                "opt_g": t.opt_g.state_dict(),
                "opt_d": t.opt_d.state_dict(),
                "hyperparameters": {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")},
                "epochs_run": len(self.history_),
                "best_epoch": self.best_epoch_,
                "best_val_ndcg@20": self.best_score_,
                **meta,
            },
            path,
        )

    @torch.no_grad()
    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        if not hasattr(self, "generator_"):
            raise NotFittedError("CFGAN is not fitted yet: call fit(train) first.")
        device = next(self.generator_.parameters()).device
        out = np.empty(history.shape, dtype=np.float32)
        for start in range(0, history.shape[0], 4096):
            block = history[start : start + 4096].toarray().astype(np.float32, copy=False)
            out[start : start + 4096] = self.generator_(torch.from_numpy(block).to(device)).cpu().numpy()
        if not np.isfinite(out).all():
            raise TrainingDivergedError("CFGAN produced non-finite scores.")
        return out
