"""The one recommender contract every model honours.

`__init__` only stores hyperparameters; `fit(train, validation=None) -> self`; fitted state ends in
`_`; `score(users)` and `recommend(users, k, exclude_seen=True)` work on the users of the fitted
matrix; `score_known(known, users)` scores users of a users x items matrix by what it knows of them;
`score_history(history)` scores any histories (new users included). Using a model before `fit`
raises `NotFittedError`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

from genrec.errors import NotFittedError

EpochCallback = Callable[[int, dict[str, float]], None]


class Recommender:
    """Base class: subclasses implement `fit` and `score_history`."""

    name = "base"

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> "Recommender":
        raise NotImplementedError

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Dense (n_rows, n_items) scores for users given their histories (rows of 0/1)."""
        raise NotImplementedError

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.train_.shape[1]

    def _check_fitted(self) -> None:
        if not hasattr(self, "train_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(train) first.")

    def score_known(self, known: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        """Scores for every item of `users`, rows of `known` (what the caller knows of every user);
        by default the users' histories alone. How evaluation scores test users."""
        return self.score_history(known[np.asarray(users)])

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of the fitted matrix's `users` for every item."""
        self._check_fitted()
        return self.score_known(self.train_, users)

    def recommend_history(
        self, history: sp.csr_matrix, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and their scores for each history row; -1 pads short lists."""
        return self._top(self.score_history(history), history, k, exclude_seen)

    @staticmethod
    def _top(raw: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        from genrec.evaluation import top_k

        scores = np.array(raw, dtype=np.float64, copy=True)
        if exclude_seen:
            rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
            scores[rows, history.indices] = -np.inf
        items = top_k(scores, k)
        best = np.take_along_axis(scores, items, axis=1)
        items = np.where(np.isfinite(best), items, -1)
        return items, np.where(np.isfinite(best), best, np.nan)

    def recommend(self, users: np.ndarray, k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        users = np.asarray(users)
        return self._top(self.score(users), self.train_[users], k, exclude_seen)
