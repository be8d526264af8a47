"""EASE (Steck, WWW 2019): a closed-form linear item-item model, B = I - P diag(1/diag(P)),
P = (X^T X + lambda I)^-1, with a zero diagonal. The strongest simple baseline on these data sets.

lambda is chosen on the validation split (fit on train, score validation), then the model is
refitted on train + validation. The item x item matrix is dense: memory grows with the square of the
catalogue (about 8 bytes x items^2), which is EASE's own limit, not the data's.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from genrec.models.base import EpochCallback, Recommender
from genrec.models.tuning import choose_on_validation, refit_matrix

log = logging.getLogger(__name__)


def ease_weights(train: sp.csr_matrix, lam: float) -> np.ndarray:
    gram = (train.T @ train).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def linear_scorer(weights: np.ndarray):
    return lambda history: np.asarray(history @ weights)


class EASE(Recommender):
    name = "ease"

    def __init__(self, lambdas: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 800.0, 1200.0, 2000.0)):
        self.lambdas = lambdas

    def fit(self, train: sp.csr_matrix, validation: sp.csr_matrix | None = None,
            on_epoch: EpochCallback | None = None) -> "EASE":
        train = train.tocsr().astype(np.float32)
        self.lambda_, self.validation_scores_ = choose_on_validation(
            self.lambdas, lambda lam: linear_scorer(ease_weights(train, lam)), train, validation
        )
        full = refit_matrix(train, validation)
        self.train_ = full
        self.weights_ = ease_weights(full, self.lambda_)
        self.chosen_params_ = {"lambda": self.lambda_}
        log.info("EASE lambda %s (validation ndcg@20 %s)", self.lambda_, self.validation_scores_)
        return self

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        return np.asarray(history @ self.weights_)

