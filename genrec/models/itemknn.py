"""Item-based nearest neighbours with cosine similarity (Sarwar et al. 2001; Deshpande & Karypis 2004).

Each item keeps its `k` most similar items; a user's score for an item sums the similarities to the
items in the user's history. `k` is chosen by the mean validation NDCG@20 over `tuning_repeats`
carve-outs of the training data (`tuning.carve_outs`), then the model is refitted on train +
validation. Similarities stay sparse.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from genrec.dataset import Histories
from genrec.models.configs import ItemKNNConfig  # noqa: F401 - the family's config, re-exported
from genrec.models.base import ModelState, Recommender, Scorer
from genrec.models.tuning import choose_on_carve_outs

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions

log = logging.getLogger(__name__)


def cosine_topk(train: sp.csr_matrix, k: int, block: int = 2048) -> sp.csr_matrix:
    """Item x item cosine similarities, the k largest per row, diagonal removed (sparse result)."""
    x = train.tocsc().astype(np.float32)
    norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
    xt = x.T.tocsr()
    n = x.shape[1]
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = (xt[start:stop] @ x).toarray()
        sims /= np.outer(norms[start:stop], norms) + 1e-9
        sims[np.arange(stop - start), np.arange(start, stop)] = 0.0
        kk = min(k, n - 1)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        top_vals = np.take_along_axis(sims, top, axis=1)
        keep = top_vals > 0
        rows.append(np.repeat(np.arange(start, stop), kk)[keep.ravel()])
        cols.append(top.ravel()[keep.ravel()])
        vals.append(top_vals.ravel()[keep.ravel()])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def similarity_arrays(similarity: sp.csr_matrix) -> dict[str, np.ndarray]:
    """An item x item similarity matrix as `ModelState` arrays."""
    return {"similarity.data": similarity.data, "similarity.indices": similarity.indices,
            "similarity.indptr": similarity.indptr}


def similarity_from(arrays: dict[str, np.ndarray], n_items: int) -> sp.csr_matrix:
    return sp.csr_matrix((arrays["similarity.data"], arrays["similarity.indices"], arrays["similarity.indptr"]),
                         shape=(n_items, n_items))


def _scorer(similarity: sp.csr_matrix):
    transposed = similarity.T.tocsr()
    return lambda history: (history @ transposed).toarray()


class ItemKNN(Recommender):
    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None, train=None):
        super().__init__(config or ItemKNNConfig(), train)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "ItemKNN":
        self.k_, self.validation_scores_ = choose_on_carve_outs(
            self.config.neighbours, lambda fold_train: lambda k: _scorer(cosine_topk(fold_train, k)),
            data.train, data.validation, self.config.tuning_repeats, exclude_seen=data.exclude_seen,
            max_users=data.validation_users)
        # Row i holds item i's neighbours: a user's scores are history @ S^T.
        self.similarity_ = cosine_topk(data.known, self.k_).T.tocsr()
        self.chosen_params_ = {"neighbours": self.k_}
        self._remember(data)
        log.info("ItemKNN k=%s (validation ndcg@20 %s)", self.k_, self.validation_scores_)
        return self

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return (histories.matrix() @ self.similarity_).toarray()

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """ItemKNN with the chosen k fitted on the training split alone."""
        self._check_fitted()
        similarity = cosine_topk(data.train, self.k_).T.tocsr()
        return lambda histories: (histories.matrix() @ similarity).toarray()

    def get_state(self) -> ModelState:
        self._check_fitted()
        return ModelState(arrays=similarity_arrays(self.similarity_),
                          meta={"neighbours": self.k_, "n_items": self.n_items_})

    @classmethod
    def from_state(cls, config: ItemKNNConfig, state: ModelState) -> "ItemKNN":
        model = cls(config)
        model.n_items_ = state.meta["n_items"]
        model.similarity_ = similarity_from(state.arrays, model.n_items_)
        model.k_ = state.meta["neighbours"]
        model.chosen_params_ = {"neighbours": model.k_}
        return model
