"""CFGAN trained at the cost of the interactions, not of rows x items (`model.cfgan.output=sampled`).

The published trainer (`trainer.py`) computes the generator's output for every item of every row in
a batch and shows the discriminator whole vectors. Its losses need far less: under ZR the
discriminator sees the generated vector masked to the row's own items (e_u), and the ZR term asks
for the output at a random share of the unobserved items only. Here each step draws `negatives`
items for the whole batch (uniformly, without replacement, as ZR's share is drawn; for each row
those it has are left out) and computes the generator's output at each row's items and at the drawn
ones only, reading the output layer's rows of those items:

    G(c_u)_j = sigmoid-MLP(c_u) . W_j + b_j

- ZR: alpha * sum over a zr_ratio share of the unobserved items of G_j^2 is estimated without bias
  by alpha * zr_ratio * (items / negatives) * sum over the drawn unobserved ones of G_j^2.
- PM: the discriminator's generated vector has the row's items and the drawn unobserved items
  (k_u is the drawn items rather than a pm_ratio share of all of them); the real vector, 1 at the
  row's items, is 0 there.
- WGAN-GP: the gradient penalty is taken over the coordinates the vectors have (the row's items,
  and the drawn ones under PM), the others being 0 in both.

Every item table (the generator's input and output layers, the discriminator's two input halves)
is read a step at a time: the rows the step reads are gathered once (`Read`), the step computes on
that block, and Adam moves those rows from the block's gradient (SparseAdam's arithmetic: a row's
moments move when it is read), with the L2 penalty on those rows; the weight average
(`genrec.models.average`, from the initial weights as the full trainer's) is kept lazily at the
rows a step moves. A step costs the batch's interactions x the width plus rows x negatives x the
width, whatever the catalogue.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from genrec import distributed
from genrec.errors import UsageError
from genrec.models.average import Average
from genrec.models.cfgan.config import CFGANConfig
from genrec.models.cfgan.networks import Discriminator, Generator, SparseRows
from genrec.models.cfgan.trainer import TwoNetworks, with_dropout
from genrec.models.rows import Optimisers, Read, distinct


def item_tables(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of `module` with one row per item (read a step at a time, `Read`), the others excluded."""
    if isinstance(module, Generator):
        return [module.net[0].weight, module.net[-1].weight]
    return [module.condition_in.weight, module.vector_in.weight]


class Reads(NamedTuple):
    """Which rows of each item table a batch's steps read, and where each item read is among them."""

    inputs: np.ndarray
    """G's input layer: the items of G's input (the condition after input dropout)."""
    input_at: np.ndarray
    outputs: np.ndarray
    """G's output layer (and D's vector half under partial masking): the rows' items and the drawn ones."""
    item_at: np.ndarray
    shared_at: np.ndarray
    given: np.ndarray
    """D's condition half (and its vector half otherwise): the rows' items."""
    given_at: np.ndarray

    @classmethod
    def of(cls, real: sp.csr_matrix, kept: sp.csr_matrix, drawn: "Drawn") -> "Reads":
        width = real.shape[1]
        return cls(*distinct(width, kept.indices), *distinct(width, real.indices, drawn.shared),
                   *distinct(width, real.indices))


class Drawn(NamedTuple):
    """A batch as the sampled trainer reads it: the rows' items (CSR order) and `negatives` items
    drawn for the whole batch, with which of them each row has (`own`, left out of that row)."""

    row: np.ndarray
    """The batch row of each interaction."""
    item: np.ndarray
    offsets: np.ndarray
    """Where each row's interactions start."""
    shared: np.ndarray
    """The drawn items, shared by the batch's rows."""
    own: np.ndarray
    """rows x drawn: whether the row has the drawn item (then it is not one of its unobserved)."""
    zr_weight: np.ndarray
    """Per row: zr_ratio / (the probability that an item is drawn)."""

    @classmethod
    def of(cls, real: sp.csr_matrix, negatives: int, zr_ratio: float, rng: np.random.Generator) -> "Drawn":
        n_rows, width = real.shape
        lengths = np.diff(real.indptr)
        row = np.repeat(np.arange(n_rows), lengths)
        shared = rng.choice(width, size=min(negatives, width), replace=False)
        own = np.zeros((n_rows, len(shared)), dtype=bool)
        column_of = np.full(width, -1, dtype=np.int64)
        column_of[shared] = np.arange(len(shared))
        hit = column_of[real.indices] >= 0
        own[row[hit], column_of[real.indices[hit]]] = True
        # Each item is drawn with probability len(shared) / width: weighting the drawn unobserved
        # items by its inverse estimates the sum over all of them without bias (Horvitz-Thompson).
        zr_weight = np.full(n_rows, zr_ratio * width / len(shared), dtype=np.float32)
        return cls(row, real.indices, real.indptr[:-1], shared, own, zr_weight)


class SampledCFGANTrainer(TwoNetworks):
    """CFGAN's G and D over `rows`, trained on each row's items and drawn unobserved items only."""

    def __init__(self, cfg: CFGANConfig, rows: sp.csr_matrix, device: torch.device, seed: int, attributes=None):
        if attributes is not None:
            raise UsageError("model.cfgan.output=sampled does not use item attributes yet: set model.cfgan.output=full "
                             "with model.attributes=true.")
        if distributed.current().parallel:
            raise UsageError("model.cfgan.output=sampled trains in one process: set model.cfgan.output=full to train "
                             "under torchrun.")
        self.cfg = cfg
        self.rows = rows.tocsr().astype(np.float32)
        self.rows.sort_indices()
        self.device = device
        width = self.rows.shape[1]
        start = torch.Generator().manual_seed(seed)
        self.generator = Generator(width, cfg.hidden_g, cfg.layers_g, start).to(device)
        self.discriminator = Discriminator(width, cfg.hidden_d, cfg.layers_d, start).to(device)
        betas = (0.0, 0.9) if cfg.loss == "wgan-gp" else (0.9, 0.999)
        self.opt_g = Optimisers(self.generator, item_tables(self.generator), cfg.lr_g, cfg.reg_g, betas)
        self.opt_d = Optimisers(self.discriminator, item_tables(self.discriminator), cfg.lr_d, cfg.reg_d, betas)
        tables = tuple(name for name, _ in self.opt_g.tables)
        self.average = Average(self.generator, cfg.ema_decay, tables, start="weights") if cfg.ema_decay else None
        self.partial = cfg.scheme in ("PM", "ZP")
        """Whether D sees G's output at the drawn items (partial masking), or at each row's items alone."""
        self._kept, self._kept_at = copy.deepcopy(self.generator).requires_grad_(False), -1
        self.active = np.flatnonzero(np.diff(self.rows.indptr) > 0)
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator(device=device).manual_seed(seed)

    @property
    def kept_generator(self) -> Generator:
        """The weight average as of the current step, or the generator."""
        if self.average is None:
            return self.generator
        if self._kept_at != self.average.steps:
            self._kept.load_state_dict(self.average.weights())
            self._kept_at = self.average.steps
        return self._kept

    def load_state_dict(self, state: dict) -> None:
        average = state.get("average")
        if average is not None and "module" in average:  # a checkpoint of the average's earlier form
            state = {**state, "average": {"steps": average["step"], "sums": average["module"],
                                          "current": average["last"]}}
        super().load_state_dict(state)
        self._kept_at = -1

    # --- one step of each network ---------------------------------------------------------------

    def _batch(self, rows: np.ndarray) -> "Batch":
        """The rows as D's condition (their items), as G's input (`with_dropout`), the items drawn
        for them, and the item tables' rows the steps read."""
        real = self.rows[rows]
        kept = with_dropout(real, self.cfg.input_dropout, self.rng)
        drawn = Drawn.of(real, self.cfg.negatives, self.cfg.zr_ratio, self.rng)
        return Batch(SparseRows.from_csr(real, self.device), SparseRows.from_csr(kept, self.device), drawn,
                     Reads.of(real, kept, drawn))

    def _tensor(self, a: np.ndarray, dtype=torch.int64) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, dtype=dtype, non_blocking=True)

    def _outputs(self, batch: "Batch", drawn: bool = True) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                     dict[str, Read]]:
        """G's output at each row's items (one value per interaction) and at the drawn items
        (rows x drawn, 0 where the row has the item; None without `drawn`, for a D step that does
        not see them), and what it read of its item tables: the hidden layers once per row, then the
        output layer's rows of those items only."""
        g, reads = self.generator, batch.reads
        first, out = g.net[0], g.net[-1]
        inputs = Read.of(first.weight, self._tensor(reads.inputs))
        kept = SparseRows(self._tensor(reads.input_at), batch.condition.offsets, batch.condition.values)
        hidden = g.net[1:-1](first.over(inputs.block, kept))
        outputs = Read.of(out.weight, self._tensor(reads.outputs if drawn else reads.given))
        item_at = self._tensor(reads.item_at if drawn else reads.given_at)
        # index_select rather than [] indexing: its backward adds rows (index_add) instead of sorting them.
        row = hidden.index_select(0, self._tensor(batch.drawn.row))
        at_items = (row * outputs.block.index_select(0, item_at)).sum(dim=1)
        at_items = at_items + out.bias.index_select(0, self._tensor(batch.drawn.item))
        read = {self.opt_g.name(first.weight): inputs, self.opt_g.name(out.weight): outputs}
        if not drawn:
            return at_items, None, read
        shared = self._tensor(batch.drawn.shared)
        at_drawn = torch.addmm(out.bias.index_select(0, shared), hidden,
                               outputs.block.index_select(0, self._tensor(reads.shared_at)).T)
        return at_items, at_drawn * self._tensor(~batch.drawn.own, torch.float32), read

    def _seen(self, batch: "Batch") -> "Seen":
        """D's first layer as a step reads it: the condition's half (computed once for the vectors
        the step judges) and the rows of its vector half (the rows' items, and the drawn ones under
        partial masking)."""
        d, reads = self.discriminator, batch.reads
        condition = Read.of(d.condition_in.weight, self._tensor(reads.given))
        given = SparseRows(self._tensor(reads.given_at), batch.given.offsets, batch.given.values)
        half = d.condition_in.over(condition.block, given)
        vector = Read.of(d.vector_in.weight, self._tensor(reads.outputs if self.partial else reads.given))
        item_at = self._tensor(reads.item_at) if self.partial else given.indices
        shared_at = self._tensor(reads.shared_at) if self.partial else None
        return Seen(half, vector, item_at, shared_at,
                    {self.opt_d.name(d.condition_in.weight): condition, self.opt_d.name(d.vector_in.weight): vector})

    def _judge(self, seen: "Seen", batch: "Batch", at_items: torch.Tensor, at_drawn: torch.Tensor | None,
               twice: bool = False) -> torch.Tensor:
        """D's logit for the vector with `at_items` at each row's items and `at_drawn` at the drawn
        items (None: 0 there), under the batch's condition. With `twice`, computed so that its
        gradient can be differentiated again (embedding_bag's weighted sum cannot be)."""
        weights = seen.vector.block
        if twice:
            vector = torch.zeros(len(batch.drawn.offsets), weights.shape[1], device=self.device).index_add_(
                0, self._tensor(batch.drawn.row), weights.index_select(0, seen.item_at) * at_items[:, None])
        else:
            vector = self.discriminator.vector_in.over(weights, SparseRows(seen.item_at, batch.given.offsets, at_items))
        if at_drawn is not None:
            vector = vector + at_drawn @ weights.index_select(0, seen.shared_at)
        return self.discriminator.rest(seen.half + vector).squeeze(1)

    def step_d(self, batch: "Batch") -> float:
        with torch.no_grad():  # G's output where D sees it: the rows' items, and the drawn ones under partial masking
            at_items, at_drawn, _ = self._outputs(batch, drawn=self.partial)
        seen = self._seen(batch)
        if self.cfg.loss == "wgan-gp":
            loss = self._critic_loss(seen, batch, at_items, at_drawn)
        else:
            d_real = self._judge(seen, batch, torch.ones_like(at_items), None)
            d_fake = self._judge(seen, batch, at_items, at_drawn)
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_d.step(seen.reads)
        return float(loss.detach())

    def _critic_loss(self, seen: "Seen", batch: "Batch", at_items: torch.Tensor,
                     at_drawn: torch.Tensor | None) -> torch.Tensor:
        """WGAN-GP, the penalty over the coordinates the vectors have (the rows' items, and the
        drawn items under partial masking): elsewhere both are 0."""
        drawn = batch.drawn
        n_rows = len(drawn.offsets)
        d_real = self._judge(seen, batch, torch.ones_like(at_items), None)
        d_fake = self._judge(seen, batch, at_items, at_drawn)
        share = torch.rand(n_rows, generator=self.torch_rng, device=self.device)
        row = self._tensor(drawn.row)
        between_items = (share[row] + (1 - share[row]) * at_items).requires_grad_(True)
        between_drawn = None if at_drawn is None else ((1 - share)[:, None] * at_drawn).requires_grad_(True)
        d_between = self._judge(seen, batch, between_items, between_drawn, twice=True)
        wrt = [between_items] + ([] if between_drawn is None else [between_drawn])
        grads = torch.autograd.grad(d_between.sum(), wrt, create_graph=True)
        squares = torch.zeros(n_rows, device=self.device).index_add_(0, row, grads[0] ** 2)
        if between_drawn is not None:
            squares = squares + (grads[1] ** 2 * self._tensor(~drawn.own, torch.float32)).sum(dim=1)
        return d_fake.mean() - d_real.mean() + self.cfg.gp_weight * ((squares.sqrt() - 1) ** 2).mean()

    def step_g(self, batch: "Batch") -> float:
        at_items, at_drawn, reads = self._outputs(batch)
        self.discriminator.requires_grad_(False)
        d_fake = self._judge(self._seen(batch), batch, at_items, at_drawn if self.partial else None)
        loss = -d_fake.mean() if self.cfg.loss == "wgan-gp" else F.binary_cross_entropy_with_logits(
            d_fake, torch.ones_like(d_fake))
        if self.cfg.scheme in ("ZR", "ZP"):
            per_row = (at_drawn**2).sum(dim=1) * self._tensor(batch.drawn.zr_weight, torch.float32)
            loss = loss + self.cfg.zr_coefficient * per_row.mean()
        self.opt_g.zero_grad()
        loss.backward()
        self.discriminator.requires_grad_(True)
        moved = self.opt_g.step(reads)
        if self.average is not None:
            self.average.step(moved)
        return float(loss.detach())


class Batch(NamedTuple):
    """A batch as the sampled trainer's steps read it."""

    given: SparseRows
    """The rows' items: D's condition, and the real vectors."""
    condition: SparseRows
    """G's input: the rows' items after input dropout."""
    drawn: Drawn
    reads: Reads


class Seen(NamedTuple):
    """D's first layer as one step reads it (`SampledCFGANTrainer._seen`)."""

    half: torch.Tensor
    """The condition's half of the first layer, per row."""
    vector: Read
    """The rows of the vector half the step reads."""
    item_at: torch.Tensor
    """Where each interaction's item is among `vector.rows`."""
    shared_at: torch.Tensor | None
    """Where each drawn item is among them (partial masking only)."""
    reads: dict[str, Read]
    """Both halves' reads, by parameter name, for the optimiser."""
