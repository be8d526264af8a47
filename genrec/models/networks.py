"""CFGAN's two networks: forward passes only (training lives in `cfgan.py`)."""

from __future__ import annotations

import torch
from torch import nn


def _mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    """`layers` sigmoid hidden layers of width `hidden`, then a linear output (as CFGAN's code)."""
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.Sigmoid()]
        width = hidden
    mods.append(nn.Linear(width, n_out))
    for m in mods:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.uniform_(m.bias, -0.01, 0.01)
    return nn.Sequential(*mods)


class Generator(nn.Module):
    """A user's purchase vector (the condition) in, a preference score for every item out.

    With `item_item`, a linear item-to-item path (no self-links: its diagonal is held at zero)
    runs beside the MLP; it can be started from a closed-form item-item model such as EASE.
    """

    def __init__(self, n_items: int, hidden: int, layers: int, item_item: bool = False):
        super().__init__()
        self.net = _mlp(n_items, hidden, layers, n_items)
        self.item_item = nn.Linear(n_items, n_items, bias=False) if item_item else None
        if self.item_item is not None:
            nn.init.zeros_(self.item_item.weight)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        out = self.net(condition)
        if self.item_item is not None:
            out = out + self.item_item(condition)
        return out

    @torch.no_grad()
    def start_from(self, weights: torch.Tensor) -> None:
        """Set the item-item path to `weights` (items x items, scores = history @ weights) and the
        MLP's output layer to zero, so that the generator starts as exactly that model."""
        if self.item_item is None:
            raise ValueError("this generator has no item-item path")
        self.item_item.weight.copy_(weights.T)
        last = self.net[-1]
        last.weight.zero_()
        last.bias.zero_()

    @torch.no_grad()
    def zero_self_links(self) -> None:
        if self.item_item is not None:
            self.item_item.weight.fill_diagonal_(0.0)


class Discriminator(nn.Module):
    """(condition, purchase vector) in, one logit out: real user or generated one."""

    def __init__(self, n_items: int, hidden: int, layers: int):
        super().__init__()
        self.net = _mlp(2 * n_items, hidden, layers, 1)

    def forward(self, condition: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, vector], dim=1)).squeeze(1)
