"""Item-based nearest neighbours with cosine similarity (Sarwar et al. 2001; Deshpande & Karypis 2004).

Each item keeps its `k` most similar items; a user's score for an item sums the similarities to the
items in the user's history. `k` is chosen by the mean validation NDCG@20 over `tuning_repeats`
carve-outs of the training data (`tuning.carve_outs`), then the model is refitted on train +
validation. Similarities stay sparse.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from genrec.models.base import EpochCallback, Recommender
from genrec.models.tuning import choose_on_carve_outs, refit_matrix

log = logging.getLogger(__name__)


def cosine_topk(train: sp.csr_matrix, k: int, shrink: float = 0.0, block: int = 2048) -> sp.csr_matrix:
    """Item x item cosine similarities, the k largest per row, diagonal removed (sparse result)."""
    x = train.tocsc().astype(np.float32)
    norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
    xt = x.T.tocsr()
    n = x.shape[1]
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = (xt[start:stop] @ x).toarray()
        sims /= np.outer(norms[start:stop], norms) + shrink + 1e-9
        sims[np.arange(stop - start), np.arange(start, stop)] = 0.0
        kk = min(k, n - 1)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        top_vals = np.take_along_axis(sims, top, axis=1)
        keep = top_vals > 0
        rows.append(np.repeat(np.arange(start, stop), kk)[keep.ravel()])
        cols.append(top.ravel()[keep.ravel()])
        vals.append(top_vals.ravel()[keep.ravel()])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def _scorer(similarity: sp.csr_matrix):
    transposed = similarity.T.tocsr()
    return lambda history: (history @ transposed).toarray()


class ItemKNN(Recommender):
    name = "itemknn"

    def __init__(self, neighbours: tuple[int, ...] = (10, 25, 50, 100, 200, 400), shrink: float = 0.0,
                 tuning_repeats: int = 5):
        self.neighbours = neighbours
        self.shrink = shrink
        self.tuning_repeats = tuning_repeats

    def fit(self, train: sp.csr_matrix, validation: sp.csr_matrix | None = None,
            on_epoch: EpochCallback | None = None) -> "ItemKNN":
        train = train.tocsr().astype(np.float32)
        self.k_, self.validation_scores_ = choose_on_carve_outs(
            self.neighbours, lambda fold_train: lambda k: _scorer(cosine_topk(fold_train, k, self.shrink)),
            train, validation, self.tuning_repeats)
        full = refit_matrix(train, validation)
        self.train_ = full
        # Row i holds item i's neighbours: a user's scores are history @ S^T.
        self.similarity_ = cosine_topk(full, self.k_, self.shrink).T.tocsr()
        self.chosen_params_ = {"neighbours": self.k_}
        log.info("ItemKNN k=%s (validation ndcg@20 %s)", self.k_, self.validation_scores_)
        return self

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        return (history @ self.similarity_).toarray()

