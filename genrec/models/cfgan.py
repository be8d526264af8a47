"""CFGAN (Chae et al., CIKM 2018): a conditional GAN whose generator outputs a user's preferences.

User-based mode: the condition is the user's purchase vector e_u. The discriminator tells real
vectors from generated ones masked to e_u + k_u (partial masking, PM: k_u is a random share of the
user's unobserved items); the generator also pushes a random share of unobserved items towards zero
(zero reconstruction, ZR). ZP uses both. Item-based mode (the authors' presets) swaps the roles: the
condition is an item's vector of users and the generator fills in which users would buy it. Early
stopping on validation NDCG@20 (never on test).

With blend=ease (the `default` preset) the scores served mix the generator's with EASE's, by a
weight chosen on validation once the generator is chosen: `mix_scores`.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from genrec.config import CFGAN_CHOICES
from genrec.errors import NotFittedError, TrainingDivergedError, UsageError
from genrec.models.base import EpochCallback, Recommender
from genrec.models.ease import LAMBDAS as EASE_LAMBDAS
from genrec.models.networks import Discriminator, Generator, SparseRows
from genrec.models.tuning import choose_on_validation, refit_matrix

log = logging.getLogger(__name__)

FUSED = {"fused": True}  # one kernel per optimiser step instead of several per parameter


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def progress_enabled(requested: bool) -> bool:
    """Progress bars only for a person at a terminal, never in CI."""
    return requested and sys.stderr.isatty() and not os.environ.get("CI")


class Batch(NamedTuple):
    """A training batch: the rows' real vectors (dense, for the masks), the same as the networks
    read them (`SparseRows` or dense), and the generator's input (after input dropout)."""

    real: torch.Tensor
    given: torch.Tensor | SparseRows
    condition: torch.Tensor | SparseRows


class CFGANTrainer:
    """One adversarial epoch at a time over a CSR matrix, densified per batch: users x items in
    user-based mode, items x users in item-based mode (a row is what the generator completes)."""

    def __init__(self, model: "CFGAN", train: sp.csr_matrix, device: torch.device, init: np.ndarray | None = None):
        self.m = model
        self.train = train
        self.device = device
        width = train.shape[1]
        self.generator = Generator(width, model.hidden_g, model.layers_g, item_item=init is not None,
                                   noise_dim=model.noise_dim).to(device)
        if init is not None:
            self.generator.start_from(torch.from_numpy(init).to(device))
        self.discriminator = Discriminator(width, model.hidden_d, model.layers_d).to(device)
        # reg/2 * ||w||^2 in the loss (CFGAN's tf.nn.l2_loss) has the gradient reg * w: Adam's
        # (coupled) weight decay adds exactly that, without a pass over the weights per step.
        # The item-item path keeps its own (closed-form) regularisation: no decay.
        item_item = self.generator.item_item
        decayed = [p for p in self.generator.parameters() if item_item is None or p is not item_item.weight]
        groups = [{"params": decayed, "weight_decay": model.reg_g}]
        if init is not None:
            lr = model.lr_g if model.lr_item_item is None else model.lr_item_item
            if lr > 0:
                groups.append({"params": [self.generator.item_item.weight], "weight_decay": 0.0, "lr": lr})
            else:
                self.generator.item_item.weight.requires_grad_(False)
        # WGAN-GP's critic and generator train with Adam's momentum off (Gulrajani et al., 2017).
        betas = {"betas": (0.0, 0.9)} if model.loss == "wgan-gp" else {}
        self.opt_g = torch.optim.Adam(groups, lr=model.lr_g, **betas, **FUSED)
        # An exponential moving average of G's weights smooths the adversarial noise; it is what
        # validation sees and what is kept (ema_decay=0: the raw generator, as published).
        self.average = (
            torch.optim.swa_utils.AveragedModel(
                self.generator, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(model.ema_decay)
            )
            if model.ema_decay
            else None
        )
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=model.lr_d, weight_decay=model.reg_d,
                                      **betas, **FUSED)
        # Rows with no training interaction carry no signal for either network.
        self.rows = np.flatnonzero(np.diff(train.indptr) > 0)
        # The generator reads its input sparse unless something else needs it dense (the
        # item-item path, or a held-out target that is derived from it).
        self.sparse_condition = init is None and model.target == "history"
        # Each trainer draws from its own generators, so a refit twin on another thread leaves the
        # selection run's draws (and so its results) as they would be alone.
        self.rng = np.random.default_rng(model.seed)
        self.torch_rng = torch.Generator(device=device).manual_seed(model.seed)

    @property
    def kept_generator(self) -> Generator:
        """The generator that is validated and kept: the weight average when there is one."""
        return self.average.module if self.average is not None else self.generator

    def _dense(self, block: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(block.toarray().astype(np.float32, copy=False)).to(self.device, non_blocking=True)

    def _batch(self, rows: np.ndarray) -> Batch:
        """The users' real vectors and the generator's training input: the same vectors with a
        share of each history dropped (denoising, `input_dropout`), drawn on the sparse rows. The
        networks read both sparse where they can."""
        real = self.train[rows]
        kept = real
        if self.m.input_dropout:
            keep = self.rng.random(real.nnz) >= self.m.input_dropout
            kept = real.copy()
            kept.data = np.where(keep, kept.data / (1 - self.m.input_dropout), 0).astype(np.float32)
            kept.eliminate_zeros()
        dense = self._dense(real)
        if self.sparse_condition:
            return Batch(dense, SparseRows.from_csr(real, self.device), SparseRows.from_csr(kept, self.device))
        return Batch(dense, dense, dense if kept is real else self._dense(kept))

    def _views(self, batch: Batch) -> tuple[torch.Tensor | SparseRows, torch.Tensor, torch.Tensor | SparseRows]:
        """D's condition, the real vector it is shown (dense) and the same as D reads it.
        `history` (as published): the condition and the real vector are both e_u. `held_out`: the
        condition is what the generator was given (the kept items) and the real vector is what was
        dropped from it, so copying the input earns nothing."""
        if self.m.target == "history":
            return batch.given, batch.real, batch.given
        kept = (batch.condition > 0).float()
        dropped = batch.real - kept
        return kept, dropped, dropped

    def _pm_mask(self, unobserved: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """target + k_u: the real vector's items plus a random share of the unobserved ones (PM, ZP)."""
        if self.m.scheme not in ("PM", "ZP"):
            return target
        return target + (self._bernoulli(unobserved, self.m.pm_ratio) & unobserved).float()

    def _zr_mask(self, unobserved: torch.Tensor) -> torch.Tensor | None:
        """A random share of the unobserved items, pushed towards zero (ZR, ZP)."""
        if self.m.scheme not in ("ZR", "ZP"):
            return None
        return (self._bernoulli(unobserved, self.m.zr_ratio) & unobserved).float()

    def _bernoulli(self, like: torch.Tensor, p: float) -> torch.Tensor:
        """A vectorised draw for a whole batch, in bytes rather than floats (p rounded to 1/256).
        On the CPU NumPy's generator fills the bytes several times faster than torch's."""
        if like.device.type == "cpu":
            draw = torch.frombuffer(bytearray(self.rng.bytes(like.numel())), dtype=torch.uint8).view(like.shape)
        else:
            draw = torch.randint(0, 256, like.shape, dtype=torch.uint8, device=like.device, generator=self.torch_rng)
        return draw < round(p * 256)

    def _noise(self, rows: int) -> torch.Tensor | None:
        """The generator's noise input for a batch (noise_dim > 0), standard normal."""
        if not self.m.noise_dim:
            return None
        return torch.randn(rows, self.m.noise_dim, generator=self.torch_rng, device=self.device)

    def _batches(self, size: int):
        order = self.rng.permutation(self.rows)
        for start in range(0, len(order), size):
            yield order[start : start + size]

    def step_d(self, batch: Batch) -> float:
        # (1) Discriminator: maximise log D(e_u | c_u) + log(1 - D(G(c_u) * (e_u + k_u) | c_u))
        d_condition, target, target_in = self._views(batch)
        pm_mask = self._pm_mask(batch.real == 0, target)
        with torch.no_grad():
            fake = self.generator(batch.condition, self._noise(len(target))) * pm_mask
        if self.m.loss == "wgan-gp":
            loss = self._critic_loss(d_condition, target, target_in, fake)
        else:
            d_real, d_fake = self.discriminator(d_condition, target_in, fake)
            loss = (
                F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return float(loss.detach())

    def _critic_loss(self, condition: torch.Tensor | SparseRows, target: torch.Tensor,
                     target_in: torch.Tensor | SparseRows, fake: torch.Tensor) -> torch.Tensor:
        """WGAN-GP: D is a critic, minimising D(fake) - D(real) plus `gp_weight` x (|grad D| - 1)^2 at
        random points between the real and the generated vector (the gradient penalty)."""
        share = torch.rand(len(target), 1, generator=self.torch_rng, device=self.device)
        between = (share * target + (1 - share) * fake).requires_grad_(True)
        d_real, d_fake, d_between = self.discriminator(condition, target_in, fake, between)
        (grad,) = torch.autograd.grad(d_between.sum(), between, create_graph=True)
        penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
        return d_fake.mean() - d_real.mean() + self.m.gp_weight * penalty

    def step_g(self, batch: Batch) -> float:
        # (2) Generator: maximise log D(G(c_u) * (e_u + k_u) | c_u), minus alpha * sum_ZR r_uj^2
        d_condition, target, _ = self._views(batch)
        unobserved = batch.real == 0
        pm_mask, zr_mask = self._pm_mask(unobserved, target), self._zr_mask(unobserved)
        out = self.generator(batch.condition, self._noise(len(target)))
        self.discriminator.requires_grad_(False)  # G's step needs D's gradient for its input, not its weights
        (d_fake,) = self.discriminator(d_condition, out * pm_mask)
        if self.m.loss == "wgan-gp":
            loss = -d_fake.mean()
        else:
            loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        if zr_mask is not None:
            loss = loss + self.m.zr_coefficient * ((out**2) * zr_mask).sum(dim=1).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.discriminator.requires_grad_(True)
        self.opt_g.step()
        self.generator.zero_self_links()
        if self.average is not None:
            self.average.update_parameters(self.generator)
        return float(loss.detach())

    def epoch(self) -> dict[str, float]:
        """`d_steps` passes of D over the rows, then `g_steps` passes of G; mean losses."""
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
    """CFGAN recommender, user- or item-based, early-stopped on validation NDCG@20."""

    name = "cfgan"

    def __init__(
        self,
        hidden_g: int = 400,
        hidden_d: int = 125,
        layers_g: int = 1,
        layers_d: int = 1,
        scheme: str = "ZP",
        loss: str = "bce",
        gp_weight: float = 1.0,
        noise_dim: int = 0,
        mode: str = "user",
        init: str = "random",
        refit: bool = False,
        blend: str = "none",
        blend_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        blend_max_items: int = 20000,
        target: str = "history",
        lr_item_item: float | None = None,
        ease_lambdas: tuple[float, ...] = EASE_LAMBDAS,
        tuning_repeats: int = 5,
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
        self.loss = loss
        self.gp_weight = gp_weight
        self.noise_dim = noise_dim
        self.mode = mode
        self.init = init
        self.refit = refit
        self.blend = blend
        self.blend_weights = blend_weights
        self.blend_max_items = blend_max_items
        self.target = target
        self.lr_item_item = lr_item_item
        self.ease_lambdas = ease_lambdas
        self.tuning_repeats = tuning_repeats
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
        self._check_params()
        device = resolve_device(self.device)
        train = train.tocsr().astype(np.float32)
        if validation is not None and validation.nnz == 0:
            validation = None
        blend = self._blends(train, validation)
        self.ease_lambda_ = self._choose_lambda(train, validation) if self.init == "ease" or blend else None
        self.trained_on_ = str(device)
        self.history_: list[dict[str, float]] = []
        # Without validation every epoch runs and the last generator is kept.
        self.best_epoch_, self.best_score_, self.init_score_ = self.epochs, -math.inf, None
        self.popularity_score_ = None  # validation's popularity floor, below which patience waits
        self.train_ = refit_matrix(train, validation)  # what `score(users)` conditions on from now on
        refit = self.refit and validation is not None
        selected = self._run(train, validation, device, on_epoch, refit_train=self.train_ if refit else None)
        self.chosen_params_ = {"epochs": self.best_epoch_}
        if refit:
            self.chosen_params_["refit"] = True
        self.generator_.eval()
        self.generator_.to("cpu")  # served and pickled on the CPU, wherever it trained
        self.blend_weight_, self.ease_weights_ = 1.0, None  # the generator alone
        if blend:
            self.blend_weight_ = self._choose_blend(train, validation, selected)
            self.chosen_params_.update({"blend_weight": self.blend_weight_, "ease_lambda": self.ease_lambda_})
            if self.blend_weight_ < 1.0:
                from genrec.models.ease import ease_weights

                self.ease_weights_ = ease_weights(self.train_, self.ease_lambda_)  # refitted, as EASE itself
        return self

    def _blends(self, train: sp.csr_matrix, validation: sp.csr_matrix | None) -> bool:
        """Whether this fit mixes EASE into the scores: asked for, something to choose the weight on,
        and a catalogue whose items x items matrix fits in memory."""
        if self.blend != "ease":
            return False
        if validation is None:
            log.warning("CFGAN blend=ease needs a validation split to choose the weight: the generator alone is kept.")
            return False
        if train.shape[1] > self.blend_max_items:
            log.warning("CFGAN blend=ease skipped: %d items > blend_max_items=%d (EASE's items x items matrix "
                        "would not fit); the generator alone is kept.", train.shape[1], self.blend_max_items)
            return False
        return True

    def _choose_blend(self, train: sp.csr_matrix, validation: sp.csr_matrix, selected: Generator) -> float:
        """The weight of the generator's scores against EASE's (fitted on `train` with the chosen
        lambda) that does best on validation, with the generator as validation chose it."""
        from genrec.models.ease import ease_weights

        weights = ease_weights(train, self.ease_lambda_)
        selected.eval()
        weight, scores = choose_on_validation(
            self.blend_weights,
            lambda w: lambda history: mix_scores(w, _forward(selected, history), np.asarray(history @ weights)),
            train, validation)
        log.info("CFGAN blend weight %s (validation ndcg@20 %s)", weight, scores)
        return weight

    def _check_params(self) -> None:
        for name, allowed in CFGAN_CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"CFGAN {name} must be one of {allowed}, got {value!r}.")
        if self.init == "ease" and self.mode != "user":
            raise ValueError("CFGAN init=ease needs mode=user (the item-item path maps a user's items to items).")
        if self.blend == "ease" and self.mode != "user":
            raise ValueError("CFGAN blend=ease needs mode=user (EASE scores a user's items, not an item's users).")
        if not self.blend_weights or not all(0.0 <= w <= 1.0 for w in self.blend_weights):
            raise ValueError(f"CFGAN blend_weights must be between 0 and 1, got {self.blend_weights!r}.")
        if self.noise_dim < 0 or self.gp_weight < 0:
            raise ValueError(f"CFGAN noise_dim and gp_weight must be >= 0, got {self.noise_dim!r}, {self.gp_weight!r}.")
        if self.target == "held_out" and not self.input_dropout:
            raise ValueError("CFGAN target=held_out needs input_dropout > 0 (the held-out items are the dropped ones).")

    def _trainer_for(self, train: sp.csr_matrix, device: torch.device) -> CFGANTrainer:
        """Fresh networks for `train`, seeded: the same start whichever run builds them."""
        torch.manual_seed(self.seed)
        start_weights = None
        if self.init == "ease":
            from genrec.models.ease import ease_weights

            start_weights = ease_weights(train, self.ease_lambda_)
        rows = train if self.mode == "user" else train.T.tocsr()
        return CFGANTrainer(self, rows, device, init=start_weights)

    def _run(self, train: sp.csr_matrix, validation: sp.csr_matrix | None, device: torch.device,
             on_epoch: EpochCallback | None, refit_train: sp.csr_matrix | None = None) -> Generator:
        """Train fresh networks on `train` for up to `self.epochs`; with `validation`, early-stop on
        its NDCG@20 and keep the best generator (epoch 0, the start, competes when it is EASE).
        Returns the selection run's generator as validation chose it.

        With `refit_train` (train + validation), the refit runs in lockstep beside the selection run,
        on a second thread: a twin trained the same way on `refit_train`, whose generator is kept
        as it was after the epoch validation chose. That is what training again for the chosen
        number of epochs gives, without waiting for the choice (the twin runs `patience` epochs
        past it, on a core the selection run leaves idle).
        """
        trainer = self._trainer_for(train, device)
        twin = self._trainer_for(refit_train, device) if refit_train is not None else None
        kept = twin or trainer  # whose generator is returned (and checkpointed)
        self._trainer = kept
        self.generator_ = trainer.kept_generator  # validated during the run
        best_state = selected_state = None  # the kept generator's and the selection run's, at the best epoch
        if validation is not None:
            self.best_epoch_ = 0
            self.popularity_score_ = _popularity_score(train, validation)
            if self.init == "ease":
                self.generator_.eval()
                self.init_score_ = self.best_score_ = self._validate(train, validation)
                selected_state = copy.deepcopy(trainer.kept_generator.state_dict())
                best_state = copy.deepcopy(twin.kept_generator.state_dict()) if twin is not None else selected_state

        bar = None
        if progress_enabled(self.progress) and self.epochs:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs, desc="CFGAN", unit="epoch", file=sys.stderr)
        pool, threads = None, torch.get_num_threads()
        if twin is not None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cfgan-refit")
            torch.set_num_threads(max(1, threads // 2))  # the two runs share the cores, not oversubscribe them
        start = time.perf_counter()
        try:
            twin_epoch = pool.submit(twin.epoch) if pool is not None and self.epochs else None
            for epoch in range(1, self.epochs + 1):
                record = {"epoch": epoch, **trainer.epoch()}
                if twin_epoch is not None:
                    record.update({f"refit_{k}": v for k, v in twin_epoch.result().items()})
                    state = copy.deepcopy(twin.kept_generator.state_dict())  # the twin after `epoch` epochs
                    # The twin goes on while this thread validates; a last extra epoch is discarded.
                    twin_epoch = pool.submit(twin.epoch) if epoch < self.epochs else None
                if validation is not None:
                    self.generator_.eval()
                    record["val_ndcg@20"] = self._validate(train, validation)
                    if record["val_ndcg@20"] > self.best_score_:
                        self.best_score_ = record["val_ndcg@20"]
                        self.best_epoch_ = epoch
                        selected_state = copy.deepcopy(trainer.kept_generator.state_dict())
                        best_state = state if twin is not None else selected_state
                record["seconds"] = time.perf_counter() - start
                self.history_.append(record)
                if on_epoch is not None:
                    on_epoch(epoch, record)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds")})
                # Patience counts once the generator ranks better than popularity: below it, it has
                # not started learning yet (on sparse data a GAN can take 100s of epochs to start).
                started = validation is not None and self.best_score_ > self.popularity_score_
                if started and epoch - self.best_epoch_ >= self.patience:
                    log.info("early stop at epoch %d (best %d, val ndcg@20 %.4f)", epoch, self.best_epoch_,
                             self.best_score_)
                    break
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
                torch.set_num_threads(threads)
            if bar is not None:
                bar.close()
        if validation is not None and self.history_ and self.best_score_ <= self.popularity_score_:
            log.warning("CFGAN never ranked better than popularity on validation (best ndcg@20 %.4f, popularity "
                        "%.4f) in %d epochs: more epochs or another preset may help.", self.best_score_,
                        self.popularity_score_, len(self.history_))
        if selected_state is not None:
            trainer.kept_generator.load_state_dict(selected_state)
        if twin is not None and best_state is not None:
            twin.kept_generator.load_state_dict(best_state)
        self.generator_ = kept.kept_generator
        return trainer.kept_generator

    def _validate(self, train: sp.csr_matrix, validation: sp.csr_matrix) -> float:
        from genrec.evaluation import evaluate_scores

        return evaluate_scores(lambda users: self._generator_scores(train, users), train, validation,
                               ks=(20,)).metrics["ndcg@20"]

    def _choose_lambda(self, train: sp.csr_matrix, validation: sp.csr_matrix | None) -> float:
        """EASE's lambda for the item-item start or the blend, chosen as EASE itself chooses it."""
        from genrec.models.ease import choose_lambda

        return choose_lambda(self.ease_lambdas, train, validation, self.tuning_repeats)[0]

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
                "chosen_on_validation": self.chosen_params_,
                **meta,
            },
            path,
        )

    def _generate(self, conditions: sp.csr_matrix, columns: np.ndarray | None = None) -> np.ndarray:
        """The kept generator's output for each row of `conditions` (only `columns` kept)."""
        if not hasattr(self, "generator_"):
            raise NotFittedError("CFGAN is not fitted yet: call fit(train) first.")
        return _forward(self.generator_, conditions, columns)

    def _generator_scores(self, known: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        """`users`' scores from the generator alone (what early stopping validates)."""
        if self.mode == "user":
            return self._generate(known[np.asarray(users)])
        # Item-based: each item's column of `known` in, that item's scores for every user out.
        return self._generate(known.T.tocsr(), columns=np.asarray(users)).T

    def _mixed(self, generated: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """The generator's scores, mixed with EASE's where validation chose a blend."""
        ease = getattr(self, "ease_weights_", None)  # absent from models pickled before the blend existed
        if ease is None:
            return generated
        return mix_scores(self.blend_weight_, generated, np.asarray(history @ ease))

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        if self.mode == "item":
            raise UsageError("An item-based CFGAN scores only the users it trained on (its generator completes items' "
                             "vectors of users), not new histories: use model.mode=user to serve or to score histories.")
        return self._mixed(self._generate(history), history)

    def score_known(self, known: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        if self.mode == "item":
            return self._generator_scores(known, users)
        return self.score_history(known[np.asarray(users)])


@torch.no_grad()
def _forward(generator: Generator, conditions: sp.csr_matrix, columns: np.ndarray | None = None) -> np.ndarray:
    """The generator's output for each row of `conditions`, in blocks (only `columns` kept)."""
    device = next(generator.parameters()).device
    width = conditions.shape[1] if columns is None else len(columns)
    out = np.empty((conditions.shape[0], width), dtype=np.float32)
    for start in range(0, conditions.shape[0], 4096):
        block = conditions[start : start + 4096]
        if generator.item_item is None:  # read sparse: the first layer's cost grows with the items in the rows
            scores = generator(SparseRows.from_csr(block.tocsr(), device)).cpu().numpy()
        else:
            scores = generator(torch.from_numpy(block.toarray().astype(np.float32)).to(device)).cpu().numpy()
        out[start : start + 4096] = scores if columns is None else scores[:, columns]
    if not np.isfinite(out).all():
        raise TrainingDivergedError("CFGAN produced non-finite scores.")
    return out


def _popularity_score(train: sp.csr_matrix, validation: sp.csr_matrix) -> float:
    """Validation NDCG@20 of ranking every user's unseen items by popularity in `train`."""
    from genrec.evaluation import evaluate_scores
    from genrec.models.pop import Popularity

    pop = Popularity().fit(train)
    return evaluate_scores(lambda users: pop.score_known(train, users), train, validation,
                           ks=(20,)).metrics["ndcg@20"]


def mix_scores(weight: float, generated: np.ndarray, ease: np.ndarray) -> np.ndarray:
    """weight x the generator's scores + (1 - weight) x EASE's, each standardised per row (mean 0,
    sd 1 over the items), so that neither model's scale decides the mix."""
    if weight >= 1.0:
        return generated
    if weight <= 0.0:
        return ease
    return (weight * _standardised(generated) + (1.0 - weight) * _standardised(ease)).astype(np.float32)


def _standardised(scores: np.ndarray) -> np.ndarray:
    centred = scores - scores.mean(axis=1, keepdims=True)
    return centred / np.maximum(centred.std(axis=1, keepdims=True), 1e-12)
