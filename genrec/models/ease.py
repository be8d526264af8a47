"""EASE (Steck, WWW 2019): a closed-form linear item-item model, B = I - P diag(1/diag(P)),
P = (X^T X + lambda I)^-1, with a zero diagonal. The strongest simple baseline on these data sets.

lambda is chosen by the mean validation NDCG@20 over `tuning_repeats` carve-outs of the training
data (the given validation split and more drawn from train + validation; `tuning.carve_outs`), then
the model is refitted on train + validation. The item x item matrix is dense: memory grows with the
square of the catalogue (about 8 bytes x items^2), which is EASE's own limit, not the data's.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from genrec.models.base import EpochCallback, Recommender
from genrec.models.tuning import choose_on_carve_outs, refit_matrix

log = logging.getLogger(__name__)


LAMBDAS = (50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 800.0, 1200.0, 2000.0)


def gram_matrix(train: sp.csr_matrix) -> np.ndarray:
    return (train.T @ train).toarray().astype(np.float64)


def ease_weights(train: sp.csr_matrix, lam: float, gram: np.ndarray | None = None) -> np.ndarray:
    """EASE's item x item weights fitted on `train` (its Gram matrix `gram` when already computed)."""
    regularised = gram_matrix(train) if gram is None else gram.copy()
    regularised[np.diag_indices_from(regularised)] += lam
    p = scipy.linalg.inv(regularised, overwrite_a=True, check_finite=False)
    p /= -np.diag(p)  # B = I - P diag(1/diag(P)), in place: the matrix is items x items
    np.fill_diagonal(p, 0.0)
    return p.astype(np.float32)


def linear_scorer(weights: np.ndarray):
    return lambda history: np.asarray(history @ weights)


def choose_lambda(lambdas: tuple[float, ...], train: sp.csr_matrix, validation: sp.csr_matrix | None,
                  repeats: int) -> tuple[float, dict[str, float]]:
    """The lambda with the best mean validation NDCG@20 over `repeats` carve-outs, and each one's mean."""

    def scorers_on(fold_train: sp.csr_matrix):
        gram = gram_matrix(fold_train)
        return lambda lam: linear_scorer(ease_weights(fold_train, lam, gram))

    return choose_on_carve_outs(lambdas, scorers_on, train, validation, repeats)


class EASE(Recommender):
    name = "ease"

    def __init__(self, lambdas: tuple[float, ...] = LAMBDAS, tuning_repeats: int = 5):
        self.lambdas = lambdas
        self.tuning_repeats = tuning_repeats

    def fit(self, train: sp.csr_matrix, validation: sp.csr_matrix | None = None,
            on_epoch: EpochCallback | None = None) -> "EASE":
        train = train.tocsr().astype(np.float32)
        self.lambda_, self.validation_scores_ = choose_lambda(self.lambdas, train, validation, self.tuning_repeats)
        full = refit_matrix(train, validation)
        self.train_ = full
        self.weights_ = ease_weights(full, self.lambda_)
        self.chosen_params_ = {"lambda": self.lambda_}
        log.info("EASE lambda %s (validation ndcg@20 %s)", self.lambda_, self.validation_scores_)
        return self

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        return np.asarray(history @ self.weights_)

