"""Low-rank EASE: EASE's closed form on a rank-r approximation of the Gram matrix, for catalogues
where EASE's dense items x items inverse does not fit (memory and time grow with items x rank).

With X ~ U S V^T (a randomized truncated SVD, V items x r) the Gram matrix is G ~ V diag(s) V^T,
s = S^2, and (G + lambda I)^-1 = (I - V diag(c) V^T) / lambda with c = s / (s + lambda). EASE's
B = I - P diag(1 / diag(P)) then scores a history x as

    x B = x - (x - (x V) diag(c) V^T) diag(1 / (1 - q)),    q_j = sum_k V_jk^2 c_k,

at the cost of nnz(x) x r + r x items per row; B itself (items x items) is never formed. Its
diagonal is zero, as EASE's. lambda is chosen on validation (NDCG@20 of a seeded sample of at most
`eval.validation_users` validation users), then the model is refitted on train + validation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from genrec.dataset import Histories
from genrec.models.base import ModelState, Recommender, Scorer
from genrec.models.configs import LowRankEASEConfig  # noqa: F401 - the family's config, re-exported

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions

log = logging.getLogger(__name__)


def factors(train: sp.csr_matrix, rank: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """V (items x r, orthonormal columns) and s (the Gram matrix's r largest eigenvalues) of `train`."""
    from sklearn.utils.extmath import randomized_svd

    rank = max(1, min(rank, min(train.shape) - 1))
    _, singular, vt = randomized_svd(train.astype(np.float32), n_components=rank, n_iter=4, random_state=seed)
    return np.ascontiguousarray(vt.T, dtype=np.float32), (singular.astype(np.float64) ** 2)


class LowRankScorer:
    """x B for histories x, from V, s and lambda (see the module's docstring)."""

    def __init__(self, v: np.ndarray, s: np.ndarray, lam: float):
        c = s / (s + lam)
        self.v = v
        self.vc = (v * c.astype(np.float32)).astype(np.float32)
        self.scale = (1.0 / (1.0 - (v.astype(np.float64) ** 2) @ c)).astype(np.float32)

    def __call__(self, x: sp.csr_matrix) -> np.ndarray:
        projected = np.asarray(x @ self.v) @ self.vc.T
        dense = x.toarray().astype(np.float32, copy=False)
        return dense - (dense - projected) * self.scale


class LowRankEASE(Recommender):
    name = "ease-lowrank"

    def __init__(self, config: LowRankEASEConfig | None = None, train=None):
        super().__init__(config or LowRankEASEConfig(), train)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "LowRankEASE":
        from genrec.models.tuning import choose_on_validation

        cfg = self.config
        v, s = factors(data.train, cfg.rank)
        self.lambda_, self.validation_scores_ = choose_on_validation(
            cfg.lambdas, lambda lam: LowRankScorer(v, s, lam), data.train, data.validation,
            exclude_seen=data.exclude_seen, max_users=data.validation_users)
        self._train_factors = (v, s)  # for validation_scorer, not kept
        self.v_, self.s_ = factors(data.known, cfg.rank)  # refitted on train + validation
        self.scorer_ = LowRankScorer(self.v_, self.s_, self.lambda_)
        self.chosen_params_ = {"lambda": self.lambda_, "rank": int(len(self.s_))}
        self._remember(data)
        log.info("low-rank EASE rank %d, lambda %s (validation ndcg@20 %s)", len(self.s_), self.lambda_,
                 self.validation_scores_)
        return self

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return self.scorer_(histories.matrix())

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """The chosen lambda on the factors of the training split alone."""
        self._check_fitted()
        v, s = getattr(self, "_train_factors", None) or factors(data.train, self.config.rank)
        scorer = LowRankScorer(v, s, self.lambda_)
        return lambda histories: scorer(histories.matrix())

    def get_state(self) -> ModelState:
        self._check_fitted()
        return ModelState(arrays={"v": self.v_, "s": self.s_},
                          meta={"lambda": self.lambda_, "n_items": self.n_items_, "chosen": self.chosen_params_})

    @classmethod
    def from_state(cls, config: LowRankEASEConfig, state: ModelState) -> "LowRankEASE":
        model = cls(config)
        model.v_ = np.asarray(state.arrays["v"], dtype=np.float32)
        model.s_ = np.asarray(state.arrays["s"], dtype=np.float64)
        model.lambda_, model.n_items_ = state.meta["lambda"], state.meta["n_items"]
        model.chosen_params_ = state.meta["chosen"]
        model.scorer_ = LowRankScorer(model.v_, model.s_, model.lambda_)
        return model

