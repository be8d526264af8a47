"""Item tables trained a step at a time at the rows the step reads: a step gathers those rows once
(`Read`), computes on that block, and Adam moves them from the block's gradient (`Optimisers`),
so that a step costs the rows it reads, not the catalogue. The sampled CFGAN trainer
(`genrec.models.cfgan.sampled`) and the sequence family's sampled softmax
(`genrec.models.seqgan.trainer`) train their item tables so."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.optim.adam import adam

FUSED = {"fused": True}  # one kernel per optimiser step instead of several per parameter


class Read(NamedTuple):
    """The rows of an item table a step reads (sorted, once each) and a copy of their weights, the
    block the step computes on: its gradient is the table's at those rows, with nothing to sort or
    sum (as a sparse gradient of repeated reads would need)."""

    rows: torch.Tensor
    block: torch.Tensor

    @classmethod
    def of(cls, table: torch.Tensor, rows: torch.Tensor) -> "Read":
        return cls(rows, table.detach().index_select(0, rows).requires_grad_(table.requires_grad))


def distinct(width: int, *items: np.ndarray) -> tuple[np.ndarray, ...]:
    """The distinct items of `items` (of a catalogue of `width`), sorted, then where each entry of
    each array is among them (a mark per item: no sort)."""
    marked = np.zeros(width, dtype=bool)
    for a in items:
        marked[a] = True
    rows = np.flatnonzero(marked)
    at = np.empty(width, dtype=np.int64)
    at[rows] = np.arange(len(rows))
    return (rows, *(at[a] for a in items))


class Moved(NamedTuple):
    """The rows of an item table a step moved, with their values before and after it."""

    rows: torch.Tensor
    before: torch.Tensor
    after: torch.Tensor


class Optimisers:
    """Adam for a network's small parameters; for its item `tables`, Adam on the rows each step read
    (a `Read` per table, its block's gradient; torch's SparseAdam's arithmetic: a row's moments move
    when it is read), with the L2 penalty `reg` x w on those rows (the gradient of reg/2 ||w||^2, as
    Adam's coupled decay; with `decoupled`, AdamW's decay of the weights instead, for the small
    parameters too). A table's weights and moments are read and written once per step, at those
    rows only."""

    def __init__(self, network: nn.Module, tables: list[nn.Parameter], lr: float, reg: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, decoupled: bool = False):
        ids = {id(p) for p in tables}
        self.tables = [(name, p) for name, p in network.named_parameters() if id(p) in ids]
        self.lr, self.reg, self.betas, self.eps, self.decoupled = lr, reg, betas, eps, decoupled
        dense = torch.optim.AdamW if decoupled else torch.optim.Adam
        self.dense = dense([p for p in network.parameters() if id(p) not in ids], lr=lr, weight_decay=reg,
                           betas=betas, **FUSED)
        self.moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in self.tables}
        self.steps = {name: 0 for name, _ in self.tables}

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)

    def name(self, table: torch.Tensor) -> str:
        """The parameter name of an item table of the network."""
        return next(name for name, p in self.tables if p is table)

    def step(self, reads: dict[str, Read]) -> dict[str, Moved]:
        """One step, the item tables' from what the step read of each (by parameter name, after
        backward); each table's moved rows, by parameter name."""
        self.dense.step()
        b1, b2 = self.betas
        moved = {}
        with torch.no_grad():
            for name, p in self.tables:
                read = reads.get(name)
                if read is None or read.block.grad is None:
                    continue
                rows, before, grad = read.rows, read.block.detach(), read.block.grad
                after = before.clone()
                m_all, v_all = self.moments[name]
                m, v = m_all.index_select(0, rows), v_all.index_select(0, rows)
                self.steps[name] += 1
                t = self.steps[name]
                # torch's fused Adam on the gathered rows, in one pass. It adds eps to sqrt(v) after
                # the bias correction, SparseAdam before: eps / sqrt(1 - b2^t) makes them the same.
                adam([after], [grad], [m], [v], [], [torch.tensor(float(t - 1), device=p.device)],
                     fused=True, amsgrad=False, beta1=b1, beta2=b2, lr=self.lr, weight_decay=self.reg,
                     eps=self.eps / math.sqrt(1 - b2**t), maximize=False, decoupled_weight_decay=self.decoupled)
                m_all.index_copy_(0, rows, m)
                v_all.index_copy_(0, rows, v)
                p.index_copy_(0, rows, after)
                moved[name] = Moved(rows, before, after)
        return moved

    def state_dict(self) -> dict[str, Any]:
        return {"dense": self.dense.state_dict(), "moments": self.moments, "steps": dict(self.steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dense.load_state_dict(state["dense"])
        for name, (m, v) in state["moments"].items():
            self.moments[name][0].copy_(m)
            self.moments[name][1].copy_(v)
        self.steps.update(state["steps"])
