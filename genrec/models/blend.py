"""A composite model: the scores of two fitted models, each standardised per user, mixed by a weight
chosen on validation.

Both models are fitted on the same dataset; the weight is chosen with each model as it stood on the
training split alone (`validation_scorer`: before any refit), by validation NDCG@20, from the
weights the config lists (1: the first model alone, 0: the second alone). Served scores mix the
models as fitted (refitted where they refit).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
import torch

from genrec.dataset import Histories
from genrec.evaluation import as_tensor, block_rows, evaluate_ranked, top_k_unseen
from genrec.models.base import Capabilities, ModelState, Recommender, Scorer
from genrec.training import VALIDATION_METRIC

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions, LoopResult

log = logging.getLogger(__name__)


class Moments(NamedTuple):
    """Each row's mean and sd over the items (float64)."""

    mean: np.ndarray
    sd: np.ndarray


def row_moments(scores: np.ndarray) -> Moments:
    """Each row's mean and sd over the items: the mean, then the mean squared deviation from it
    (threaded passes, as exact as torch.var_mean to 1e-7 and three times faster on 256 x 30K); a
    constant row's sd is 0 exactly (its mean, rounded, would leave a trace)."""
    x = as_tensor(scores, np.result_type(scores, np.float32))
    mean = x.mean(dim=1, keepdim=True)
    var = (x - mean).square_().mean(dim=1)
    constant = x.amax(dim=1) == x.amin(dim=1)
    return Moments(mean.squeeze(1).double().numpy(), var.masked_fill_(constant, 0).double().sqrt().numpy())


def mix_scores(weight: float, first: np.ndarray, second: np.ndarray,
               moments: tuple[Moments, Moments] | None = None) -> np.ndarray:
    """weight x the first model's scores + (1 - weight) x the second's, each standardised per row
    (mean 0, sd 1 over the items; a constant row counts as 0), so that neither model's scale
    decides the mix. `moments`: both blocks' `row_moments`, where several weights mix the same
    scores. Computed as (w / sd_a) a + ((1 - w) / sd_b) b - (the means' share): two threaded passes
    over the block, no standardised copies."""
    if weight >= 1.0:
        return first
    if weight <= 0.0:
        return second
    (mean_a, sd_a), (mean_b, sd_b) = moments or (row_moments(first), row_moments(second))
    alpha = np.divide(weight, sd_a, out=np.zeros_like(sd_a), where=sd_a > 0)
    beta = np.divide(1.0 - weight, sd_b, out=np.zeros_like(sd_b), where=sd_b > 0)
    dtype = np.result_type(first, second, np.float32)
    column = lambda v: torch.from_numpy(v.astype(dtype)[:, None])  # noqa: E731
    out = torch.addcmul(column(-(alpha * mean_a + beta * mean_b)), as_tensor(first, dtype), column(alpha))
    return out.addcmul_(as_tensor(second, dtype), column(beta)).numpy()


def choose_weight(weights: tuple[float, ...], first: Scorer, second: Scorer, data: "Dataset",
                  batch_size: int | None = None) -> tuple[float, dict[str, float]]:
    """The weight whose mix does best on `data.validation` (ties: the first listed), scoring each
    batch of users once per model and ranking every weight's mix of it."""
    k = int(VALIDATION_METRIC.split("@")[1])
    histories = data.histories(splits=("train",))
    users = np.flatnonzero(np.diff(data.scored_validation.indptr) > 0)
    ranked = {w: np.empty((len(users), min(k, data.n_items)), dtype=np.int64) for w in weights}
    batch_size = batch_size or block_rows(data.n_items)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        rows = histories.take(batch)
        a, b = np.asarray(first(rows)), np.asarray(second(rows))
        both = (row_moments(a), row_moments(b)) if any(0 < w < 1 for w in weights) else None
        seen = rows.pairs(data.exclude_seen)
        for w in weights:
            ranked[w][start : start + len(batch)] = top_k_unseen(mix_scores(w, a, b, both), *seen, k)[0]
    scores = {w: evaluate_ranked(ranked[w], users, data.scored_validation, (k,)).metrics[VALIDATION_METRIC]
              for w in weights}
    best = max(weights, key=lambda w: (scores[w], -weights.index(w)))
    return best, {str(w): round(s, 6) for w, s in scores.items()}


class Blend(Recommender):
    """Two fitted models' standardised scores, mixed by a weight chosen on validation."""

    name = "blend"

    def __init__(self, first: Recommender, second: Recommender, weights: tuple[float, ...], max_items: int,
                 large: Recommender | None = None):
        super().__init__(None, first.train_config)
        self.first, self.second, self.large = first, second, large
        self.weights = tuple(weights)
        self.max_items = max_items

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        a, b = self.first.capabilities, self.second.capabilities
        return Capabilities(scores_histories=a.scores_histories and b.scores_histories,
                            servable=a.servable and b.servable, uses_order=a.uses_order or b.uses_order,
                            uses_attributes=a.uses_attributes or b.uses_attributes,
                            iterative=a.iterative or b.iterative)

    @property
    def training_(self) -> "LoopResult | None":  # type: ignore[override]
        return self.first.training_ or self.second.training_

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "Blend":
        self.first.fit(data, options)
        self.weight_ = 1.0
        if data.validation.nnz == 0:
            log.warning("the blend with %s needs a validation split to choose its weight: %s alone is kept.",
                        self.second.name, self.first.name)
        elif data.n_items > self.max_items and self.large is None:
            log.warning("the blend with %s is skipped: %d items > model.blend_max_items=%d; %s alone is kept.",
                        self.second.name, data.n_items, self.max_items, self.first.name)
        else:
            if data.n_items > self.max_items:
                log.info("the blend takes %s for %s: %d items > model.blend_max_items=%d", self.large.name,
                         self.second.name, data.n_items, self.max_items)
                self.second = self.large
            self.second.fit(data)
            self.weight_, self.validation_scores_ = choose_weight(
                self.weights, self.first.validation_scorer(data), self.second.validation_scorer(data), data)
            log.info("blend weight %s of %s against %s (validation %s %s)", self.weight_, self.first.name,
                     self.second.name, VALIDATION_METRIC, self.validation_scores_)
        self.chosen_params_ = dict(self.first.chosen_params_)
        if hasattr(self, "validation_scores_"):
            self.chosen_params_["blend_weight"] = self.weight_
            self.chosen_params_.update({f"{self.second.name}_{k}": v for k, v in self.second.chosen_params_.items()})
        self.mixes_ = self.weight_ < 1.0  # whether the second model's scores are used at all
        self._remember(data)
        return self

    @property
    def fitted_parts(self) -> list[Recommender]:
        """The components this fit trained (the partner only where the blend was not skipped)."""
        return [self.first] + ([self.second] if hasattr(self, "validation_scores_") else [])

    def _combined(self, first: Callable[[], np.ndarray], second: Callable[[], np.ndarray]) -> np.ndarray:
        """The mix of the parts' scores (each asked for only where the weight uses it)."""
        self._check_fitted()
        if not self.mixes_:
            return first()
        return second() if self.weight_ <= 0 else mix_scores(self.weight_, first(), second())

    def score(self, histories: Histories) -> np.ndarray:
        return self._combined(lambda: self.first.score(histories), lambda: self.second.score(histories))

    def score_users(self, users: np.ndarray) -> np.ndarray:
        return self._combined(lambda: self.first.score_users(users), lambda: self.second.score_users(users))

    def score_users_with_parts(self, users: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The mix's scores of `users` and each fitted part's alone (by family), each part scored once."""
        self._check_fitted()
        parts = {part.name: part.score_users(users) for part in self.fitted_parts}
        return self._combined(lambda: parts[self.first.name], lambda: parts[self.second.name]), parts

    def get_state(self) -> ModelState:
        """The mix's facts, with each component's family, config and state nested inside
        (`genrec.models.artifacts` rebuilds the components)."""
        self._check_fitted()
        parts = [self.first] + ([self.second] if self.mixes_ else [])
        arrays: dict[str, np.ndarray] = {}
        components: list[dict[str, Any]] = []
        for i, part in enumerate(parts):
            state = part.get_state()
            arrays.update({f"{i}/{k}": v for k, v in state.arrays.items()})
            components.append({**part.describe(), "meta": state.meta})
        return ModelState(arrays=arrays, meta={"weight": self.weight_, "weights": list(self.weights),
                                               "max_items": self.max_items, "n_items": self.n_items_,
                                               "chosen": self.chosen_params_, "components": components})

    @staticmethod
    def component_states(state: ModelState) -> list[tuple[dict[str, Any], ModelState]]:
        """Each component's description and state, as `get_state` nested them."""
        out = []
        for i, part in enumerate(state.meta["components"]):
            prefix = f"{i}/"
            arrays = {k[len(prefix):]: v for k, v in state.arrays.items() if k.startswith(prefix)}
            out.append((part, ModelState(arrays, part["meta"])))
        return out

    @classmethod
    def from_parts(cls, parts: list[Recommender], state: ModelState) -> "Blend":
        model = cls(parts[0], parts[-1], state.meta["weights"], state.meta["max_items"])
        model.weight_, model.n_items_ = state.meta["weight"], state.meta["n_items"]
        model.mixes_ = len(parts) > 1
        model.chosen_params_ = state.meta["chosen"]
        return model
