"""The cold-start baselines: models that know an item by its attributes (`Dataset.features`).

`attribute-pop` scores every item by the popularity of the attributes it has: each feature's
popularity is the interaction count of the warm items that have it, weighted by how much they have
it, and an item's score is its features' popularity weighted by its own feature values. The same
ranking for everyone; a cold item ranks where its kind of item ranks.

`content-knn` scores an item like its k nearest warm items by attribute (cosine of the feature
rows): a user's score for item j is the sum of j's similarities to the items in the user's history.
An item without attributes has no neighbour and scores 0.

In both, ties (items of the same attributes, or with none) go to the more popular item: a millionth
of an item's share of the largest count is added to its score, which with no attribute table at all
leaves popularity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from genrec.dataset import Histories
from genrec.models.configs import AttributePopConfig, ContentKNNConfig  # noqa: F401 - the family's config, re-exported
from genrec.models.base import Capabilities, ModelState, Recommender
from genrec.models.itemknn import similarity_arrays, similarity_from
from genrec.models.pop import Popularity

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions


def _counts(data: "Dataset") -> np.ndarray:
    """Each item's interactions in train + validation (0: a cold item)."""
    return np.asarray(data.known.sum(axis=0)).ravel().astype(np.float64)


def _tie_break(counts: np.ndarray) -> np.ndarray:
    return (1e-6 * counts / max(counts.max(initial=0.0), 1.0)).astype(np.float32)


class AttributePop(Popularity):
    """Popularity (its scoring and state) with each item's count replaced by its attributes'."""

    name = "attribute-pop"
    capabilities = Capabilities(uses_attributes=True)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "AttributePop":
        features, counts = data.features.matrix, _counts(data)
        weight = np.asarray(features.sum(axis=0)).ravel()  # every item, cold ones included
        per_feature = np.divide(features.T @ counts, weight, out=np.zeros_like(weight), where=weight > 0)
        self.popularity_ = np.asarray(features @ per_feature, dtype=np.float32).ravel() + _tie_break(counts)
        self.chosen_params_: dict = {}
        self._remember(data)
        return self


def content_neighbours(features: sp.csr_matrix, warm: np.ndarray, k: int, block: int = 2048) -> sp.csr_matrix:
    """Items x items: row j holds j's k most similar warm items by cosine of the (L2-normalised)
    feature rows, j itself left out; no similarity is kept that is not positive."""
    n = features.shape[0]
    warm_idx = np.flatnonzero(warm)
    if len(warm_idx) == 0 or features.shape[1] == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    warm_t = features[warm_idx].T.tocsc()
    kk = min(k, len(warm_idx))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = (features[start:stop] @ warm_t).toarray()
        own = np.flatnonzero((warm_idx >= start) & (warm_idx < stop))
        sims[warm_idx[own] - start, own] = 0.0
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        top_vals = np.take_along_axis(sims, top, axis=1)
        keep = (top_vals > 0).ravel()
        rows.append(np.repeat(np.arange(start, stop), kk)[keep])
        cols.append(warm_idx[top.ravel()[keep]])
        vals.append(top_vals.ravel()[keep])
    return sp.csr_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))


class ContentKNN(Recommender):
    name = "content-knn"
    capabilities = Capabilities(uses_attributes=True)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "ContentKNN":
        # Row j: j's neighbours; a user's scores are history @ neighbours^T.
        counts = _counts(data)
        self.similarity_ = content_neighbours(data.features.matrix, counts > 0, self.config.neighbours).T.tocsr()
        self.tie_break_ = _tie_break(counts)
        self.chosen_params_: dict = {}
        self._remember(data)
        return self

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return (histories.matrix() @ self.similarity_).toarray() + self.tie_break_

    def get_state(self) -> ModelState:
        self._check_fitted()
        return ModelState(arrays={**similarity_arrays(self.similarity_), "tie_break": self.tie_break_},
                          meta={"n_items": self.n_items_})

    @classmethod
    def from_state(cls, config: ContentKNNConfig, state: ModelState) -> "ContentKNN":
        model = cls(config)
        model.n_items_ = state.meta["n_items"]
        model.similarity_ = similarity_from(state.arrays, model.n_items_)
        model.tie_break_ = np.asarray(state.arrays["tie_break"], dtype=np.float32)
        model.chosen_params_ = {}
        return model
