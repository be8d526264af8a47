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
    """A user's purchase vector (the condition) in, a preference score for every item out."""

    def __init__(self, n_items: int, hidden: int, layers: int):
        super().__init__()
        self.net = _mlp(n_items, hidden, layers, n_items)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.net(condition)


class Discriminator(nn.Module):
    """(condition, purchase vector) in, one logit out: real user or generated one."""

    def __init__(self, n_items: int, hidden: int, layers: int):
        super().__init__()
        self.net = _mlp(2 * n_items, hidden, layers, 1)

    def forward(self, condition: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, vector], dim=1)).squeeze(1)


def l2_penalty(module: nn.Module) -> torch.Tensor:
    """Half the squared L2 norm of every parameter (TensorFlow's `l2_loss`, as CFGAN uses)."""
    return sum((p**2).sum() for p in module.parameters()) / 2
