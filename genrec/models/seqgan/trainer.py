"""One epoch at a time over users' ordered histories: the sequence family's `Trainer`s for the
training loop (`genrec.training`).

Every position of a history predicts the item after it, by cross-entropy over all items: the loss
of SASRec with full softmax, which Klenitskiy & Vasilev (RecSys 2023) show ranks far better than its
original one-negative loss. Above a catalogue size (`output=auto`) the softmax is taken over the
next item and `negatives` items drawn uniformly for the step, whose logits are shifted by
log(items / negatives): each item is drawn with probability negatives / items, so the shifted
exponentials' sum estimates the full softmax's denominator (`candidate_logits`). A step then costs
positions x negatives, not positions x items; both stages use it, and the item table is then read and
trained a block of rows at a time (`genrec.models.rows`): the rows of the step's items and drawn
items, moved by Adam at those rows only (SparseAdam's arithmetic), so that a step costs its positions
and its drawn items, not the catalogue. The full softmax's cross-entropy is computed a block of
positions at a time (`_FullSoftmaxCrossEntropy`), never as one matrix of positions x items.

What each epoch hands the loop to validate and keep is a moving average of the generator's weights
over its last few epochs of steps (`genrec.models.average`, `model.seqgan.average`), not the weights
after its last step: on Online Retail the validation curve of the last weights wanders by about 1%
from epoch to epoch once it has peaked, and the average's barely moves.

The adversarial stage starts from the cross-entropy generator G and a discriminator D (an encoder
of the same shape, started as a copy of G) whose logit d(h, i) says how likely item i is the real
next item after history h. It is the minimax of IRGAN (Wang et al., SIGIR 2017) with the
expectation over G's choices taken exactly over the whole catalogue instead of by sampling, which
the full softmax makes as cheap as the cross-entropy itself:

    D minimises  -log s(d(h, real)) - sum_i G(i | h) log(1 - s(d(h, i)))
    G minimises  cross-entropy - adv_weight * sum_i G(i | h) log s(d(h, i))

(s: the logistic function). G's term is the policy gradient of the reward log s(d) with its exact
mean as the baseline; the cross-entropy keeps G anchored to the data.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from genrec.dataset import Histories
from genrec.models.average import Average
from genrec.models.item_table import ItemAttributes
from genrec.models.rows import Moved, Optimisers, Read, distinct
from genrec.models.seqgan.config import SeqGANConfig
from genrec.models.seqgan.networks import ITEM_TABLE, Dropout, Positions, SequenceEncoder, score_histories
from genrec.training import copy_state


def candidate_logits(encoder: SequenceEncoder, states: torch.Tensor, target: torch.Tensor,
                     drawn: torch.Tensor | None, shift: bool = True,
                     table: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of each state and the column of its next item `target`: over every item (`drawn`
    None), or over the target (column 0) and the `drawn` items, shifted by log(items / drawn) with
    `shift` (a softmax's estimate; a discriminator's logits are taken as they are), a drawn item
    that is the state's own target left out (-1e4: no weight in a softmax, finite in a loss).
    With `table` (a block of the item table's rows, row 0 padding), `target` and `drawn` are rows
    of it, less one, as items are of the table."""
    if drawn is None:
        return encoder.logits(states), target
    table = encoder.items.table() if table is None else table
    at_target = (states * table[target + 1]).sum(1, keepdim=True)
    at_drawn = states @ table[drawn + 1].T
    if shift:
        at_drawn = at_drawn + math.log(encoder.items.n_items / len(drawn))
    at_drawn = at_drawn.masked_fill(drawn[None, :] == target[:, None], -1e4)
    return torch.cat([at_target, at_drawn], 1), torch.zeros_like(target)


BLOCK_BYTES = 4 << 20
"""The size of one block of logits in `full_softmax_cross_entropy` (it stays in the CPU's cache)."""


def _softmax_in_place(logits: torch.Tensor, picked: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Turn a block of logits into each row's softmax, in place and with one pass of exp for both
    the loss and its gradient; the sum over the rows of the cross-entropy of each row's `picked` entry."""
    at_picked = logits[picked]
    top = logits.amax(dim=1, keepdim=True)
    total_exp = logits.sub_(top).exp_().sum(dim=1)
    logits.div_(total_exp[:, None])
    return (top.squeeze(1) + total_exp.log() - at_picked).sum()


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    """The mean cross-entropy of each state's softmax over every row of `table`, with the gradients
    computed in the same pass: a block of positions' logits is made, turned into softmax - one-hot
    where it lies and multiplied back into the two gradients, so that no positions x items matrix
    is ever made whole. On Online Retail (6,000 positions x 3,661 items) the loss and both gradients
    take 90 ms instead of 205 ms with torch's cross-entropy over the whole matrix; they agree with
    it to float rounding (tests/test_sequential.py)."""

    @staticmethod
    def forward(ctx, states: torch.Tensor, table: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, n_items = states.shape[0], table.shape[0]
        rows = max(1, BLOCK_BYTES // (n_items * states.element_size()))
        grad_states, grad_table = torch.empty_like(states), torch.zeros_like(table)
        total = torch.zeros((), dtype=torch.float64, device=states.device)
        block = states.new_empty(min(rows, n), n_items)
        for start in range(0, n, rows):
            at, next_items = states[start : start + rows], target[start : start + rows]
            softmax = torch.mm(at, table.T, out=block[: len(at)])
            picked = torch.arange(len(at), device=states.device), next_items
            total += _softmax_in_place(softmax, picked)
            softmax[picked] -= 1.0
            torch.mm(softmax, table, out=grad_states[start : start + rows])
            grad_table.addmm_(softmax.T, at)
        ctx.save_for_backward(grad_states, grad_table)
        return (total / max(n, 1)).to(states.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_states, grad_table = ctx.saved_tensors
        scale = grad / max(grad_states.shape[0], 1)
        return grad_states * scale, grad_table * scale, None


class AdversarialGradients(NamedTuple):
    """The adversarial step's three losses (means over positions) and the gradients of D's loss
    with respect to D's states and item table, and of G's (cross-entropy + adv_weight x adversarial
    term) with respect to G's."""

    ce: float
    d_loss: float
    adversarial: float
    g_states: torch.Tensor
    g_table: torch.Tensor
    d_states: torch.Tensor
    d_table: torch.Tensor


@torch.no_grad()
def full_adversarial_gradients(g_states: torch.Tensor, g_table: torch.Tensor, d_states: torch.Tensor,
                               d_table: torch.Tensor, target: torch.Tensor, adv_weight: float) -> AdversarialGradients:
    """The adversarial step over every item a block of positions at a time, as the cross-entropy
    is (`_FullSoftmaxCrossEntropy`). With z and d a position's logits of G and D, p = softmax(z),
    t its next item and r = softplus(-d) (the generator's cost, -log s(d)):

        D's loss  softplus(-d_t) + sum_i p_i softplus(d_i)       d/dd = p s(d) - onehot(t) s(-d_t)
        G's term  A = sum_i p_i r_i                              d/dz = p (r - A)
        G's loss  cross-entropy + adv_weight A                   d/dz = p - onehot(t) + adv_weight p (r - A)

    p and d are taken as constants where the other network's loss reads them, as the step's
    detached tensors are."""
    n, n_items = g_states.shape[0], g_table.shape[0]
    rows = max(1, BLOCK_BYTES // (n_items * g_states.element_size()))
    grads = [torch.empty_like(g_states), torch.zeros_like(g_table),
             torch.empty_like(d_states), torch.zeros_like(d_table)]
    totals = torch.zeros(3, dtype=torch.float64, device=g_states.device)  # cross-entropy, D's loss, G's term
    blocks = [g_states.new_empty(min(rows, n), n_items) for _ in range(2)]
    for start in range(0, n, rows):
        at_g, at_d, t = g_states[start : start + rows], d_states[start : start + rows], target[start : start + rows]
        count = len(t)
        z, d = torch.mm(at_g, g_table.T, out=blocks[0][:count]), torch.mm(at_d, d_table.T, out=blocks[1][:count])
        picked = torch.arange(count, device=t.device), t
        d_t = d[picked]
        totals[0] += _softmax_in_place(z, picked)
        p = z  # the block now holds the softmax
        cost = F.softplus(-d)
        term = (p * cost).sum(1)  # A per position
        totals[1] += F.softplus(-d_t).sum() + term.sum() + (p * d).sum()  # softplus(d) = r + d
        totals[2] += term.sum()
        d_grad = d.sigmoid_().mul_(p)
        d_grad[picked] -= torch.sigmoid(-d_t)
        g_grad = cost.sub_(term[:, None]).mul_(adv_weight).add_(1.0).mul_(p)
        g_grad[picked] -= 1.0
        torch.mm(g_grad, g_table, out=grads[0][start : start + rows])
        grads[1].addmm_(g_grad.T, at_g)
        torch.mm(d_grad, d_table, out=grads[2][start : start + rows])
        grads[3].addmm_(d_grad.T, at_d)
    scale = 1.0 / max(n, 1)
    ce, d_loss, adversarial = (float(v) * scale for v in totals)
    return AdversarialGradients(ce, d_loss, adversarial, *(g.mul_(scale) for g in grads))


def next_item_loss(encoder: SequenceEncoder, states: torch.Tensor, target: torch.Tensor,
                   drawn: torch.Tensor | None, table: torch.Tensor | None = None) -> torch.Tensor:
    """The mean cross-entropy of each state's next item `target`: over every item (`drawn` None),
    or over it and the `drawn` items (`candidate_logits`, `table` as it reads it)."""
    if drawn is None:
        return _FullSoftmaxCrossEntropy.apply(states, encoder.items.table()[1:], target)
    logits, column = candidate_logits(encoder, states, target, drawn, table=table)
    return F.cross_entropy(logits, column)


class SeqTrainer:
    """The encoder over `histories` (one per user, oldest first), its optimiser and random generators;
    with `attributes`, the items' feature encoder inside its item table."""

    def __init__(self, cfg: SeqGANConfig, histories: Histories, device: torch.device, seed: int,
                 attributes: ItemAttributes | None = None):
        self.cfg = cfg
        self.histories = histories
        self.device = device
        self.attributes = attributes
        self.encoder = SequenceEncoder(histories.n_items, cfg, seed, attributes).to(device)
        self.kept_encoder = SequenceEncoder(histories.n_items, cfg, seed, attributes).to(device)
        self.kept_encoder.load_state_dict(self.encoder.state_dict())
        self.negatives = min(cfg.negatives, histories.n_items) if cfg.sampled(histories.n_items) else 0
        # With a sampled softmax a step reads few of the item table's rows: it trains those alone.
        # (An item table with attributes is computed whole from its feature encoder, and trains so.)
        self.rowwise = self.negatives > 0 and attributes is None
        self.opt = self._optimiser(self.encoder, cfg.lr)
        # A history of one item has no next item to learn from.
        self.active = np.flatnonzero(histories.lengths >= 2)
        self.average = self._average(self.encoder)
        self.rng = np.random.default_rng(seed)
        # The encoders' dropout masks, from a generator of their own (`Dropout`).
        self.dropout = Dropout(cfg.dropout, np.random.default_rng([seed, 1]))
        # The item table's id dropout and the GRU's dropout between its layers draw from torch's
        # default generator: each epoch runs on this state of it, and the process's own is put back.
        self._devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=self._devices):
            torch.manual_seed(seed)
            self.torch_rng = self._get_rng()

    # --- the Trainer protocol -------------------------------------------------------------------

    def train_epoch(self) -> dict[str, float]:
        """One pass over the users in a random order; the mean cross-entropy per predicted item."""
        self.encoder.train()
        total, count = 0.0, 0
        order = self.rng.permutation(self.active)
        with torch.random.fork_rng(devices=self._devices):
            self._set_rng(self.torch_rng)
            for start in range(0, len(order), self.cfg.batch_size):
                loss, n = self.step(order[start : start + self.cfg.batch_size])
                total, count = total + loss * n, count + n
            self.torch_rng = self._get_rng()
        self._keep_latest()
        return {"ce_loss": total / max(count, 1)}

    def step(self, users: np.ndarray) -> tuple[float, int]:
        """Cross-entropy of each next item given the items before it, for the users' histories."""
        at, drawn, rows = self._batch(users)
        read = None if rows is None else Read.of(self.encoder.items.ids.weight, rows)
        table = None if read is None else read.block
        loss = next_item_loss(self.encoder, at.states(self.encoder, self.dropout, table), at.next_items, drawn, table)
        self.opt.zero_grad()
        loss.backward()
        self._averaged(_move(self.opt, read))
        return float(loss.detach()), len(at.next_items)

    def _batch(self, users: np.ndarray) -> tuple[Positions, torch.Tensor | None, torch.Tensor | None]:
        """The positions of the users' last max_len + 1 items (max_len inputs, each with the item after
        it), the step's drawn items (uniformly, without replacement; None: the full softmax), and
        where the item table is trained a block at a time, the rows of it the step reads (padding's
        first): the positions' items and the drawn ones are then given as rows of that block."""
        recent = self.histories.take(users, last=self.cfg.max_len + 1)
        drawn = self.rng.choice(self.histories.n_items, size=self.negatives, replace=False) if self.negatives else None
        rows = None
        if self.rowwise:
            items, items_at, drawn = distinct(self.histories.n_items, recent.items, drawn)
            recent = Histories(recent.indptr, items_at, len(items))
            rows = torch.from_numpy(np.concatenate([[0], items + 1])).to(self.device)
        at = Positions.of(recent, self.cfg.max_len, self.cfg.length_groups, self.device)
        return at, None if drawn is None else torch.from_numpy(drawn).to(self.device), rows

    def _optimiser(self, encoder: SequenceEncoder, lr: float) -> "torch.optim.AdamW | Optimisers":
        """AdamW over the encoder; with `rowwise`, its item table's at the rows each step reads."""
        if self.rowwise:
            return Optimisers(encoder, [encoder.items.ids.weight], lr, self.cfg.weight_decay, decoupled=True)
        return torch.optim.AdamW(encoder.parameters(), lr=lr, weight_decay=self.cfg.weight_decay)

    def _average(self, encoder: SequenceEncoder) -> Average | None:
        """The moving average of `encoder`'s weights over about `cfg.average` epochs of steps (None:
        no averaging), its item table averaged at the rows each step moves where it is so trained."""
        steps = self.cfg.average * math.ceil(len(self.active) / self.cfg.batch_size)
        if steps <= 1:
            return None
        return Average(encoder, 1.0 - 1.0 / steps, tables=(ITEM_TABLE,) if self.rowwise else ())

    def _keep_latest(self) -> None:
        """What validation scores and the loop keeps: the average of the weights, or the weights."""
        self.kept_encoder.load_state_dict(self.encoder.state_dict() if self.average is None else self.average.weights())

    def _averaged(self, moved: dict[str, Moved] | None) -> None:
        """The generator's weights after a step into its average (`moved`: its item table's moved rows)."""
        if self.average is not None:
            self.average.step(moved)

    def _get_rng(self) -> torch.Tensor:
        """The state of the generator dropout draws from on this trainer's device."""
        return torch.cuda.get_rng_state(self.device) if self._devices else torch.get_rng_state()

    def _set_rng(self, state: torch.Tensor) -> None:
        if self._devices:
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        return score_histories(self.kept_encoder, self.histories.take(np.asarray(users)), self.device)

    def kept(self) -> dict[str, Any]:
        return copy_state(self.kept_encoder.state_dict())

    def load_kept(self, kept: dict[str, Any]) -> None:
        self.kept_encoder.load_state_dict(kept)

    def state_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.state_dict(), "opt": self.opt.state_dict(),
                "rng": self.rng.bit_generator.state, "dropout_rng": self.dropout.rng.bit_generator.state,
                "torch_rng": self.torch_rng, "average": None if self.average is None else self.average.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self._keep_latest()
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["rng"]
        self.dropout.rng.bit_generator.state = state["dropout_rng"]
        self.torch_rng = state["torch_rng"]


class AdversarialTrainer(SeqTrainer):
    """The generator, started from `start` (the cross-entropy stage's kept weights), trained on
    against a discriminator started as a copy of it."""

    def __init__(self, cfg: SeqGANConfig, histories: Histories, device: torch.device, seed: int,
                 attributes: ItemAttributes | None, start: dict[str, Any]):
        super().__init__(cfg, histories, device, seed, attributes)
        self.encoder.load_state_dict(start)
        self.kept_encoder.load_state_dict(start)
        self.discriminator = SequenceEncoder(histories.n_items, cfg, seed, attributes).to(device)
        self.discriminator.load_state_dict(start)
        self.opt_d = self._optimiser(self.discriminator, cfg.lr_d)

    def train_epoch(self) -> dict[str, float]:
        """One pass, as the cross-entropy stage's; the discriminator's loss and the generator's
        adversarial term beside the cross-entropy (means per batch)."""
        self.discriminator.train()
        self._totals = {"d_loss": 0.0, "g_adv": 0.0, "batches": 0}
        record = super().train_epoch()
        batches = max(self._totals.pop("batches"), 1)
        return {**record, **{k: v / batches for k, v in self._totals.items()}}

    def step(self, users: np.ndarray) -> tuple[float, int]:
        at, drawn, rows = self._batch(users)
        reads = None if rows is None else Reads(*(Read.of(e.items.ids.weight, rows) for e in (self.encoder, self.discriminator)))
        g_states = at.states(self.encoder, self.dropout, None if reads is None else reads.g.block)
        d_states = at.states(self.discriminator, self.dropout, None if reads is None else reads.d.block)
        if drawn is None:
            ce, d_loss, adversarial = self._over_every_item(g_states, d_states, at.next_items)
        else:
            ce, d_loss, adversarial = self._over_drawn_items(g_states, d_states, at.next_items, drawn, reads)
        self._totals["d_loss"] += d_loss
        self._totals["g_adv"] += adversarial
        self._totals["batches"] += 1
        return ce, len(at.next_items)

    def _over_every_item(self, g_states: torch.Tensor, d_states: torch.Tensor,
                         next_items: torch.Tensor) -> tuple[float, float, float]:
        """The step with G's choices weighed exactly over every item, its losses' gradients computed
        a block at a time (`full_adversarial_gradients`) and handed to each network's backward pass."""
        g_table, d_table = self.encoder.items.table()[1:], self.discriminator.items.table()[1:]
        step = full_adversarial_gradients(g_states, g_table, d_states, d_table, next_items, self.cfg.adv_weight)

        # (1) D: maximise log s(d(h, real)) + sum_i G(i | h) log(1 - s(d(h, i)))
        self.opt_d.zero_grad(set_to_none=True)
        torch.autograd.backward([d_states, d_table], [step.d_states, step.d_table])
        self.opt_d.step()

        # (2) G: minimise cross-entropy - adv_weight * sum_i G(i | h) log s(d(h, i))
        self.opt.zero_grad(set_to_none=True)
        torch.autograd.backward([g_states, g_table], [step.g_states, step.g_table])
        self.opt.step()
        self._averaged(None)
        return step.ce, step.d_loss, step.adversarial

    def _over_drawn_items(self, g_states: torch.Tensor, d_states: torch.Tensor, next_items: torch.Tensor,
                          drawn: torch.Tensor, reads: "Reads | None") -> tuple[float, float, float]:
        """The step with G's choices weighed over the next item and the drawn ones (self-normalised);
        `reads`: the blocks of the item tables the step trains, where it trains them so."""
        g_read, d_read = reads if reads is not None else (None, None)
        logits, target = candidate_logits(self.encoder, g_states, next_items, drawn,
                                          table=None if g_read is None else g_read.block)
        chosen = torch.softmax(logits, dim=1)
        d, _ = candidate_logits(self.discriminator, d_states, next_items, drawn, shift=False,
                                table=None if d_read is None else d_read.block)

        # (1) D: maximise log s(d(h, real)) + sum_i G(i | h) log(1 - s(d(h, i)))
        d_real = d.gather(1, target[:, None]).squeeze(1)
        d_loss = F.softplus(-d_real).mean() + (chosen.detach() * F.softplus(d)).sum(1).mean()
        self.opt_d.zero_grad()
        d_loss.backward()
        _move(self.opt_d, d_read)

        # (2) G: minimise cross-entropy - adv_weight * sum_i G(i | h) log s(d(h, i))
        ce = F.cross_entropy(logits, target)
        adversarial = -(chosen * -F.softplus(-d.detach())).sum(1).mean()
        g_loss = ce + self.cfg.adv_weight * adversarial
        self.opt.zero_grad()
        g_loss.backward()
        self._averaged(_move(self.opt, g_read))
        return float(ce.detach()), float(d_loss.detach()), float(adversarial.detach())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "discriminator": self.discriminator.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_d.load_state_dict(state["opt_d"])


class Reads(NamedTuple):
    """The blocks of G's and D's item tables a step of the adversarial stage trains (`Read`)."""

    g: Read
    d: Read


def _move(opt: "torch.optim.Optimizer | Optimisers", read: Read | None) -> dict[str, Moved] | None:
    """The optimiser's step: over every parameter (`read` None), or with the item table's at `read`'s
    rows (then the rows it moved, by parameter name)."""
    if read is None:
        opt.step()
        return None
    return opt.step({ITEM_TABLE: read})
