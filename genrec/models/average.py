"""An exponential moving average of a network's weights over its training steps (Polyak averaging):
what is validated and kept is the average, whose noise from the last few steps is smoothed out,
while training goes on from the weights themselves.

With decay d, after step t the average is A_t / (1 - d^t), where A_0 = 0 and
A_t = d A_{t-1} + (1 - d) w_t (the bias correction of Adam's moments), so that the first steps are
averaged as they come instead of being pulled towards the initial weights. With `start="weights"`
A_0 is the weights before the first step and A_t is the average, uncorrected (CFGAN's sampled
trainer; its full trainer's torch `AveragedModel` is the same from the weights after the first step).

An item table trained a block of rows at a time (`genrec.models.rows`) is averaged at the rows a
step moved alone: a row that no step moves keeps its weights w, over which k steps take A to
w + d^k (A - w), so each row is brought up to date when it moves and the whole table only when the
average is read. A step then costs the rows it moved, not the catalogue."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from genrec.models.rows import Moved


class Average:
    """The average of `network`'s parameters over the steps `step` is called after; `tables`: the
    names of its item tables that are moved a block of rows at a time (their rows averaged lazily);
    `start`: from zero, bias-corrected, or from the weights before the first step (see above)."""

    def __init__(self, network: nn.Module, decay: float, tables: tuple[str, ...] = (),
                 start: Literal["zero", "weights"] = "zero"):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.network, self.decay, self.steps, self.start = network, decay, 0, start
        self.sums = {name: (p.detach().clone(memory_format=torch.contiguous_format) if start == "weights"
                            else torch.zeros_like(p, memory_format=torch.contiguous_format).detach())
                     for name, p in network.named_parameters()}
        self.current = {name: torch.zeros(self.sums[name].shape[0], dtype=torch.long, device=p.device)
                        for name, p in network.named_parameters() if name in tables}
        """For each lazily averaged table, the step each of its rows' sums is up to date with."""

    @torch.no_grad()
    def step(self, moved: dict[str, Moved] | None = None) -> None:
        """Take in the weights after one training step; `moved`: the rows of each lazily averaged
        table the step moved (with their values before and after it)."""
        self.steps += 1
        d = self.decay
        sums, weights = [], []  # the parameters averaged whole at every step
        for name, p in self.network.named_parameters():
            if name not in self.current:
                sums.append(self.sums[name])
                weights.append(p.detach())
                continue
            rows = None if moved is None else moved.get(name)
            if rows is not None:  # up to the step before, when they last had their weights before it
                at = self._caught_up(name, rows.rows, rows.before, self.steps - 1).lerp_(rows.after, 1.0 - d)
                self._write(name, rows.rows, at)
        if sums:
            torch._foreach_lerp_(sums, weights, 1.0 - d)

    def _caught_up(self, name: str, rows: torch.Tensor, weights: torch.Tensor, step: int) -> torch.Tensor:
        """The sums of a table's `rows` as of `step`, their `weights` unmoved since they were last up to date."""
        behind = (step - self.current[name].index_select(0, rows)).to(weights.dtype)
        # weights + d^behind (sums - weights), in place on the gathered sums
        at = self.sums[name].index_select(0, rows).sub_(weights)
        return at.mul_(torch.pow(self.decay, behind)[:, None]).add_(weights)

    def _write(self, name: str, rows: torch.Tensor, at: torch.Tensor) -> None:
        """Store the sums `at` of a table's `rows`, up to date with the current step."""
        self.sums[name].index_copy_(0, rows, at)
        self.current[name].index_fill_(0, rows, self.steps)

    @torch.no_grad()
    def weights(self) -> dict[str, torch.Tensor]:
        """The network's state dict with its parameters averaged (its own weights before any step)."""
        state = dict(self.network.state_dict())
        if not self.steps:
            return {k: v.clone() for k, v in state.items()}
        for name in self.current:  # every row up to date: unmoved rows weigh in their current weights
            all_rows = torch.arange(self.sums[name].shape[0], device=self.sums[name].device)
            self._write(name, all_rows, self._caught_up(name, all_rows, state[name].detach(), self.steps))
        correction = 1.0 - self.decay**self.steps if self.start == "zero" else 1.0
        return {k: (self.sums[k] / correction if k in self.sums else v.clone()) for k, v in state.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "sums": self.sums, "current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        for name, value in state["sums"].items():
            self.sums[name].copy_(value)
        for name, value in state["current"].items():
            self.current[name].copy_(value)
