"""Low-rank EASE: EASE's closed form on a rank-r approximation of the Gram matrix, for catalogues
where EASE's dense items x items inverse does not fit (memory and time grow with items x rank).

With G ~ V diag(s) V^T (G = X^T X's r leading eigenpairs, by randomized subspace iteration; V
items x r), (G + lambda I)^-1 = (I - V diag(c) V^T) / lambda with c = s / (s + lambda). EASE's
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
import torch

from genrec.dataset import Histories
from genrec.models.base import ModelState, Recommender, Scorer
from genrec.models.configs import LowRankEASEConfig  # noqa: F401 - the family's config, re-exported

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions

log = logging.getLogger(__name__)


def factors(train: sp.csr_matrix, rank: int, seed: int = 0, start: np.ndarray | None = None,
            iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """V (items x r, orthonormal columns) and s (the Gram matrix's r largest eigenvalues) of `train`.

    Subspace iteration on G = X^T X from the items' side (Halko, Martinsson & Tropp 2011, 4.4): a
    pass is X^T (X Q), orthonormalised on items x (r + 10), then Rayleigh-Ritz on Q^T G Q. `start`
    (another fit's V, e.g. on a split with a few more interactions) replaces the random start's
    first columns, and then one pass is made (at size M it captures as much of the spectrum as four
    from random: the eigenvalues' sum within 0.1%).
    """
    import torch

    x = train.astype(np.float32).tocsr()
    xt = x.T.tocsr()
    n_items = x.shape[1]
    rank = max(1, min(rank, min(x.shape) - 1))
    width = min(n_items, rank + 10)
    q = np.random.default_rng(seed).standard_normal((n_items, width)).astype(np.float32)
    if start is not None:
        q[:, : min(width, start.shape[1])] = start[:, :width]
        iterations = 1
    for _ in range(iterations):
        q = torch.linalg.qr(torch.from_numpy(np.ascontiguousarray(xt @ (x @ q)))).Q.numpy()
    s, w = np.linalg.eigh(q.T.astype(np.float64) @ (xt @ (x @ q)))
    order = np.argsort(s)[::-1][:rank]
    return np.ascontiguousarray(q @ w[:, order].astype(np.float32)), np.maximum(s[order], 0.0)


class LowRankScorer:
    """x B for histories x, from V, s and lambda (see the module's docstring)."""

    def __init__(self, v: np.ndarray, s: np.ndarray, lam: float):
        c = s / (s + lam)
        self.v = v
        self.scale = (1.0 / (1.0 - (v.astype(np.float64) ** 2) @ c)).astype(np.float32)
        # (V diag(c))^T with each item's column times its scale, contiguous: one history against
        # 100K items reads it in order (4 ms, 7 ms through the transpose of V diag(c)).
        self.vct = np.ascontiguousarray((v * c.astype(np.float32)).T * self.scale, dtype=np.float32)

    def __call__(self, x: sp.csr_matrix) -> np.ndarray:
        # x - (x - p) * scale = p * scale + x * (1 - scale), the second term at x's entries only.
        x = x.tocsr()
        # torch's product, not numpy's: a served blend then runs on one thread pool (OpenBLAS's
        # threads spinning after their product slowed the torch steps that follow: in process p90 48.5 -> 16.7 ms).
        out = (torch.from_numpy(np.asarray(x @ self.v, dtype=np.float32)) @ torch.from_numpy(self.vct)).numpy()
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        np.add.at(out, (rows, x.indices), x.data.astype(np.float32) * (1.0 - self.scale[x.indices]))
        return out


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
        self.v_, self.s_ = factors(data.known, cfg.rank, start=v)  # refitted on train + validation
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

