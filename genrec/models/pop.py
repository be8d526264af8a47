"""Popularity: every user gets the most-interacted items. The floor any model must clear."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from genrec.models.base import EpochCallback, Recommender


class Popularity(Recommender):
    name = "pop"

    def fit(self, train: sp.csr_matrix, validation: sp.csr_matrix | None = None,
            on_epoch: EpochCallback | None = None) -> "Popularity":
        self.train_ = train.tocsr()
        self.popularity_ = np.asarray(train.sum(axis=0)).ravel().astype(np.float32)
        self.chosen_params_: dict = {}
        return self

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.popularity_, (history.shape[0], len(self.popularity_)))
