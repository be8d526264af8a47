"""Item representations that every attribute-aware generator shares: an id embedding per item plus,
with attributes, a linear encoder of the item's feature row (`Dataset.features`).

    item i  ->  warm(i) * id_i + W f_i

An item with no training interaction (cold) has an id embedding nothing trained, so it is left out
and the item is known by its attributes alone; an item without attributes is known by its id alone.
While training, `id_dropout` leaves out the id rows of a random share of the warm items at each
step as well (DropoutNet, Volkovs et al. 2017), so that the attribute encoder learns to stand for
an item on its own, as it must for a cold one.
The table is computed for the whole catalogue at once with a sparse product, whose cost is the
features' non-zeros times the width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

if TYPE_CHECKING:
    from genrec.dataset import Dataset


@dataclass
class ItemAttributes:
    """What an item table is built with: the feature rows of every item and which items the
    training data has (the others' id embeddings are left out)."""

    features: sp.csr_matrix
    warm: np.ndarray

    @classmethod
    def of(cls, features: sp.csr_matrix, items_seen: np.ndarray) -> "ItemAttributes":
        """For a model trained on interactions with `items_seen` (item indices, repeats allowed)."""
        warm = np.zeros(features.shape[0], dtype=bool)
        warm[np.asarray(items_seen, dtype=np.int64)] = True
        return cls(features.tocsr(), warm)

    @classmethod
    def for_splits(cls, data: "Dataset", splits: tuple[str, ...], on: bool) -> "ItemAttributes | None":
        """For a model of `data` trained on `splits`; None unless `on` (its `attributes` switch)."""
        return cls.of(data.features.matrix, data.matrix(*splits).indices) if on else None


def _sparse(matrix: sp.csr_matrix) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=True).coalesce()


class ItemTable(nn.Module):
    """`n_items` rows of width `dim` (one more in front, all zero, with `padding`: index 0 then
    pads and item i is row i + 1)."""

    def __init__(self, n_items: int, dim: int, attributes: ItemAttributes | None = None, padding: bool = False,
                 id_dropout: float = 0.0):
        super().__init__()
        self.n_items, self.offset, self.id_dropout = n_items, int(padding), id_dropout
        self.rng: torch.Generator | None = None
        """Where the id dropout draws from (None: torch's default generator)."""
        self.ids = nn.Embedding(n_items + self.offset, dim, padding_idx=0 if padding else None)
        self.attributes = None
        if attributes is not None:
            features, warm = attributes.features, attributes.warm
            if features.shape[0] != n_items or len(warm) != n_items:
                raise ValueError(f"item attributes for {features.shape[0]} items, the table has {n_items}")
            if padding:
                features = sp.vstack([sp.csr_matrix((1, features.shape[1])), features]).tocsr()
                warm = np.concatenate([[False], warm])
            self.attributes = nn.Linear(features.shape[1], dim, bias=False)
            # Not in the state dict: they come from the data, and `folded` tables keep no attributes.
            self.register_buffer("features", _sparse(features), persistent=False)
            self.register_buffer("id_kept", torch.from_numpy(warm.astype(np.float32))[:, None], persistent=False)

    def table(self) -> torch.Tensor:
        """Every row, attributes included."""
        if self.attributes is None:
            return self.ids.weight
        kept = self.id_kept
        if self.training and self.id_dropout > 0:
            drawn = torch.rand(kept.shape, device=kept.device, generator=self.rng)
            kept = kept * (drawn >= self.id_dropout)
        return self.ids.weight * kept + torch.sparse.mm(self.features, self.attributes.weight.T)
