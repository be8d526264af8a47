"""EASE (Steck, WWW 2019): a closed-form linear item-item model, B = I - P diag(1/diag(P)),
P = (X^T X + lambda I)^-1, with a zero diagonal. The strongest simple baseline on these data sets.

lambda is chosen by the mean validation NDCG@20 over `tuning_repeats` carve-outs of the training
data (the given validation split and more drawn from train + validation; `tuning.carve_outs`), then
the model is refitted on train + validation. The item x item matrix is dense: memory grows with the
square of the catalogue (about 8 bytes x items^2), which is EASE's own limit, not the data's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from genrec.dataset import Histories
from genrec.models.configs import EASEConfig  # noqa: F401 - the family's config, re-exported
from genrec.models.base import ModelState, Recommender, Scorer
from genrec.models.tuning import choose_on_carve_outs

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions

log = logging.getLogger(__name__)


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
                  repeats: int, exclude_seen: bool = True, max_users: int | None = None
                  ) -> tuple[float, dict[str, float]]:
    """The lambda with the best mean validation NDCG@20 over `repeats` carve-outs, and each one's mean."""

    def scorers_on(fold_train: sp.csr_matrix):
        gram = gram_matrix(fold_train)
        return lambda lam: linear_scorer(ease_weights(fold_train, lam, gram))

    return choose_on_carve_outs(lambdas, scorers_on, train, validation, repeats, exclude_seen=exclude_seen,
                                max_users=max_users)


class EASE(Recommender):
    name = "ease"

    def __init__(self, config: EASEConfig | None = None, train=None):
        super().__init__(config or EASEConfig(), train)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "EASE":
        self.lambda_, self.validation_scores_ = choose_lambda(self.config.lambdas, data.train, data.validation,
                                                              self.config.tuning_repeats, data.exclude_seen,
                                                              data.validation_users)
        self.weights_ = ease_weights(data.known, self.lambda_)  # refitted on train + validation
        self.chosen_params_ = {"lambda": self.lambda_}
        self._remember(data)
        log.info("EASE lambda %s (validation ndcg@20 %s)", self.lambda_, self.validation_scores_)
        return self

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return np.asarray(histories.matrix() @ self.weights_)

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """EASE with the chosen lambda fitted on the training split alone."""
        self._check_fitted()
        weights = ease_weights(data.train, self.lambda_)
        return lambda histories: np.asarray(histories.matrix() @ weights)

    def get_state(self) -> ModelState:
        self._check_fitted()
        return ModelState(arrays={"weights": self.weights_}, meta={"lambda": self.lambda_, "n_items": self.n_items_})

    @classmethod
    def from_state(cls, config: EASEConfig, state: ModelState) -> "EASE":
        model = cls(config)
        model.weights_ = np.asarray(state.arrays["weights"], dtype=np.float32)
        model.lambda_, model.n_items_ = state.meta["lambda"], state.meta["n_items"]
        model.chosen_params_ = {"lambda": model.lambda_}
        return model
