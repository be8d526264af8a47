"""One adversarial epoch at a time: CFGAN's `Trainer` for the training loop (`genrec.training`).

User-based mode: the condition is the user's purchase vector e_u. The discriminator tells real
vectors from generated ones masked to e_u + k_u (partial masking, PM: k_u is a random share of the
user's unobserved items); the generator also pushes a random share of unobserved items towards zero
(zero reconstruction, ZR). ZP uses both. Item-based mode swaps the roles: the rows are items'
vectors of users. Rows are densified a batch at a time; the networks read them sparse.

Under torchrun the ranks draw the same batches and masks; each runs the networks on its share of
the rows (genrec/distributed.py), so that a step equals one process's on the whole batch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from genrec import distributed
from genrec.models.cfgan.config import CFGANConfig
from genrec.models.cfgan.networks import Discriminator, Generator, SparseRows, generate
from genrec.models.item_table import ItemAttributes
from genrec.models.rows import FUSED
from genrec.training import copy_state


class Batch(NamedTuple):
    """A training batch: the rows' real vectors (dense, for the masks; all of the batch's rows), and
    as the networks read them (sparse; this rank's share): the real vectors and the generator's
    input (after input dropout)."""

    real: torch.Tensor
    given: SparseRows
    condition: SparseRows
    share: slice


def with_dropout(real: sp.csr_matrix, ratio: float, rng: np.random.Generator) -> sp.csr_matrix:
    """`real` with a `ratio` share of each row's items dropped and the rest scaled by 1 / (1 - ratio)
    (denoising, `input_dropout`), drawn on the sparse rows; `real` itself where ratio is 0."""
    if not ratio:
        return real
    keep = rng.random(real.nnz) >= ratio
    kept = real.copy()
    kept.data = np.where(keep, kept.data / (1 - ratio), 0).astype(np.float32)
    kept.eliminate_zeros()
    return kept


class TwoNetworks:
    """The Trainer protocol (`genrec.training`) of a CFGAN trainer, over what its `__init__` sets:
    `cfg`, `rows`, `active` (the rows with an interaction), `generator`, `discriminator`,
    `average` (None, or an average with `.module`), `opt_g`, `opt_d`, `rng`, `torch_rng`; a step
    is `step_d(self._batch(rows))` and `step_g(self._batch(rows))`."""

    @property
    def kept_generator(self) -> Generator:
        """The generator that is validated and kept: the weight average when there is one."""
        return self.average.module if self.average is not None else self.generator

    # --- the Trainer protocol -------------------------------------------------------------------

    def train_epoch(self) -> dict[str, float]:
        """`d_steps` passes of D over the rows, then `g_steps` passes of G; mean losses."""
        self.generator.train()
        self.discriminator.train()
        d_losses = [self.step_d(self._batch(rows)) for _ in range(self.cfg.d_steps)
                    for rows in self._batches(self.cfg.batch_d)]
        g_losses = [self.step_g(self._batch(rows)) for _ in range(self.cfg.g_steps)
                    for rows in self._batches(self.cfg.batch_g)]
        return {"d_loss": float(np.mean(d_losses)) if d_losses else 0.0,
                "g_loss": float(np.mean(g_losses)) if g_losses else 0.0}

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores of the users (rows of the users x items matrix this trainer learns from, or its
        columns in item mode) from the kept generator."""
        self.kept_generator.eval()
        if self.cfg.mode == "user":
            return generate(self.kept_generator, self.rows[np.asarray(users)])
        return generate(self.kept_generator, self.rows, columns=np.asarray(users)).T

    def kept(self) -> dict[str, Any]:
        return copy_state(self.kept_generator.state_dict())

    def load_kept(self, kept: dict[str, Any]) -> None:
        self.kept_generator.load_state_dict(kept)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "average": self.average.state_dict() if self.average is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": self.torch_rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.bit_generator.state = state["rng"]
        self.torch_rng.set_state(state["torch_rng"])

    def _batches(self, size: int):
        """The active rows in a new random order, `size` at a time."""
        order = self.rng.permutation(self.active)
        for start in range(0, len(order), size):
            yield order[start : start + size]


class CFGANTrainer(TwoNetworks):
    """G and D over the rows of `rows` (users x items in user mode, items x users in item mode),
    their optimisers, the generator's weight average and the random generators they draw from."""

    def __init__(self, cfg: CFGANConfig, rows: sp.csr_matrix, device: torch.device, seed: int,
                 attributes: ItemAttributes | None = None):
        self.cfg = cfg
        self.rows = rows.tocsr().astype(np.float32)
        self.device = device
        width = self.rows.shape[1]
        start = torch.Generator().manual_seed(seed)  # the networks' initial weights
        self.generator = Generator(width, cfg.hidden_g, cfg.layers_g, start, attributes, cfg.id_dropout).to(device)
        self.discriminator = Discriminator(width, cfg.hidden_d, cfg.layers_d, start).to(device)
        self.group = distributed.current()
        self.g_net = self.group.wrap(self.generator, device)  # gradients averaged over the ranks
        self.d_net = self.group.wrap(self.discriminator, device)
        # WGAN-GP's critic and generator train with Adam's momentum off (Gulrajani et al., 2017).
        betas = {"betas": (0.0, 0.9)} if cfg.loss == "wgan-gp" else {}
        # reg/2 * ||w||^2 in the loss (CFGAN's tf.nn.l2_loss) has the gradient reg * w: Adam's
        # (coupled) weight decay adds exactly that, without a pass over the weights per step.
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_g, weight_decay=cfg.reg_g, **betas,
                                      **FUSED)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d, weight_decay=cfg.reg_d,
                                      **betas, **FUSED)
        # An exponential moving average of G's weights smooths the adversarial noise; it is what
        # validation sees and what is kept (ema_decay=0: the raw generator, as published).
        self.average = (
            torch.optim.swa_utils.AveragedModel(
                self.generator, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay))
            if cfg.ema_decay else None
        )
        # Rows with no training interaction carry no signal for either network.
        self.active = np.flatnonzero(np.diff(self.rows.indptr) > 0)
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator(device=device).manual_seed(seed)
        if attributes is not None:  # the id dropout draws from the trainer's generator too
            self.generator.net[-1].items.rng = self.torch_rng

    # --- one step of each network ---------------------------------------------------------------

    def _batch(self, rows: np.ndarray) -> Batch:
        """The rows' real vectors and the generator's training input (`with_dropout`)."""
        real = self.rows[rows]
        kept = with_dropout(real, self.cfg.input_dropout, self.rng)
        dense = torch.from_numpy(real.toarray().astype(np.float32, copy=False)).to(self.device, non_blocking=True)
        share = self.group.share(len(rows))
        return Batch(dense, SparseRows.from_csr(real[share], self.device), SparseRows.from_csr(kept[share], self.device),
                     share)

    def _pm_mask(self, unobserved: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """target + k_u: the real vector's items plus a random share of the unobserved ones (PM, ZP)."""
        if self.cfg.scheme not in ("PM", "ZP"):
            return target
        return target + (self._bernoulli(unobserved, self.cfg.pm_ratio) & unobserved).float()

    def _zr_mask(self, unobserved: torch.Tensor) -> torch.Tensor | None:
        """A random share of the unobserved items, pushed towards zero (ZR, ZP)."""
        if self.cfg.scheme not in ("ZR", "ZP"):
            return None
        return (self._bernoulli(unobserved, self.cfg.zr_ratio) & unobserved).float()

    def _bernoulli(self, like: torch.Tensor, p: float) -> torch.Tensor:
        """A vectorised draw for a whole batch, in bytes rather than floats (p rounded to 1/256).
        On the CPU NumPy's generator fills the bytes several times faster than torch's."""
        if like.device.type == "cpu":
            draw = torch.frombuffer(bytearray(self.rng.bytes(like.numel())), dtype=torch.uint8).view(like.shape)
        else:
            draw = torch.randint(0, 256, like.shape, dtype=torch.uint8, device=like.device, generator=self.torch_rng)
        return draw < round(p * 256)

    def step_d(self, batch: Batch) -> float:
        # (1) Discriminator: maximise log D(e_u | c_u) + log(1 - D(G(c_u) * (e_u + k_u) | c_u))
        rows = len(batch.real)
        pm_mask = self._pm_mask(batch.real == 0, batch.real)  # drawn for the whole batch: every rank the same
        real, pm_mask = batch.real[batch.share], pm_mask[batch.share]
        with torch.no_grad():
            fake = self.generator(batch.condition) * pm_mask
        if self.cfg.loss == "wgan-gp":
            loss = self.critic_loss(batch.given, real, batch.given, fake, rows, batch.share)
        else:
            d_real, d_fake = self.d_net(batch.given, batch.given, fake)
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.opt_d.zero_grad(set_to_none=True)
        (loss * self.group.weight(len(real), rows)).backward()
        self.opt_d.step()
        return self.group.global_mean(float(loss.detach()), len(real), rows)

    def critic_loss(self, condition: torch.Tensor | SparseRows, target: torch.Tensor,
                    target_in: torch.Tensor | SparseRows, fake: torch.Tensor, rows: int | None = None,
                    part: slice = slice(None)) -> torch.Tensor:
        """WGAN-GP: D is a critic, minimising D(fake) - D(real) plus `gp_weight` x (|grad D| - 1)^2 at
        random points between the real and the generated vector (the gradient penalty); the points
        are drawn for all `rows` of the batch, `part` of them here."""
        share = torch.rand(rows or len(target), 1, generator=self.torch_rng, device=self.device)[part]
        between = (share * target + (1 - share) * fake).requires_grad_(True)
        d_real, d_fake, d_between = self.d_net(condition, target_in, fake, between)
        (grad,) = torch.autograd.grad(d_between.sum(), between, create_graph=True)
        penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
        return d_fake.mean() - d_real.mean() + self.cfg.gp_weight * penalty

    def step_g(self, batch: Batch) -> float:
        # (2) Generator: maximise log D(G(c_u) * (e_u + k_u) | c_u), minus alpha * sum_ZR r_uj^2
        rows = len(batch.real)
        unobserved = batch.real == 0
        pm_mask, zr_mask = self._pm_mask(unobserved, batch.real), self._zr_mask(unobserved)
        pm_mask, zr_mask = pm_mask[batch.share], None if zr_mask is None else zr_mask[batch.share]
        out = self.g_net(batch.condition)
        self.discriminator.requires_grad_(False)  # G's step needs D's gradient for its input, not its weights
        (d_fake,) = self.discriminator(batch.given, out * pm_mask)
        if self.cfg.loss == "wgan-gp":
            loss = -d_fake.mean()
        else:
            loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        if zr_mask is not None:
            loss = loss + self.cfg.zr_coefficient * ((out**2) * zr_mask).sum(dim=1).mean()
        self.opt_g.zero_grad(set_to_none=True)
        (loss * self.group.weight(len(out), rows)).backward()
        self.discriminator.requires_grad_(True)
        self.opt_g.step()
        if self.average is not None:
            self.average.update_parameters(self.generator)
        return self.group.global_mean(float(loss.detach()), len(out), rows)
