"""The one recommender contract every model family honours.

`__init__` only stores the family's config section (and the training loop's settings);
`fit(data, options) -> self` reads a `Dataset`; fitted state ends in `_`. A fitted model scores
`Histories` (users' items in time order, new users included) with `score`, and the users of the
dataset it was fitted on with `score_users` (conditioned on their train + validation interactions);
`recommend` and `recommend_histories` rank those scores. Using a model before `fit` raises
`NotFittedError`.

What a family can do is data (`Capabilities`), read by generic code; its fitted state is data too
(`ModelState`: named arrays plus JSON), from which `from_state` rebuilds it without unpickling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from genrec.dataset import Histories
from genrec.errors import NotFittedError, TrainingDivergedError
from genrec.evaluation import top_k_unseen

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions, LoopResult, TrainConfig


@dataclass(frozen=True)
class Capabilities:
    """What a model family can do; generic code reads this, never the family's name."""

    scores_histories: bool = True
    """Scores any history (a new user's included), not only the users it was fitted on."""
    servable: bool = True
    """Can be registered by the training flow and served over HTTP (implies scores_histories)."""
    uses_order: bool = False
    """Reads the order of a user's interactions (the `Histories` rows), not only the set."""
    uses_attributes: bool = False
    """Can use the item attribute table (`model.attributes=true`)."""
    iterative: bool = False
    """Trained epoch by epoch by the training loop: early stopping, checkpoints, resume."""
    limited_by: str = ""
    """The setting that took a capability away, in words (empty when none did)."""


@dataclass
class ModelState:
    """A fitted model as data: named numeric arrays (saved as safetensors) and JSON-able facts."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


Scorer = Callable[[Histories], np.ndarray]
"""Maps histories to a dense (rows x items) block of scores."""


class Recommender:
    """Base class: a family implements `fit`, `score`, `get_state` and `from_state`."""

    name: ClassVar[str] = "base"
    """The family's name in the registry (`genrec.models.families`)."""
    capabilities: ClassVar[Capabilities] = Capabilities()
    training_: "LoopResult | None" = None
    """The training loop's record (epochs, validation curve, best epoch) for iterative families."""

    def __init__(self, config: Any = None, train: "TrainConfig | None" = None):
        self.config = config
        self.train_config = train

    # --- to implement -------------------------------------------------------------------------

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "Recommender":
        raise NotImplementedError

    def score(self, histories: Histories) -> np.ndarray:
        """Dense (rows, n_items) scores for each history."""
        raise NotImplementedError

    def get_state(self) -> ModelState:
        raise NotImplementedError

    @classmethod
    def from_state(cls, config: Any, state: ModelState) -> "Recommender":
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The family and config section of this model, as JSON-able data."""
        return {"family": self.name, "config": dataclasses.asdict(self.config) if self.config is not None else {}}

    @classmethod
    def capabilities_for(cls, config: Any) -> Capabilities:
        """The family's capabilities under `config` (a setting may take one away)."""
        narrow = getattr(config, "capabilities", None)
        return narrow(cls.capabilities) if callable(narrow) else cls.capabilities

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(data) first.")

    def _remember(self, data: "Dataset") -> None:
        """What every fitted model keeps of its data: the catalogue size and its users' histories
        (train + validation, in time order), which `score_users` conditions on."""
        self.n_items_ = data.n_items
        self.known_ = data.histories(splits=("train", "validation"))

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """Scores as the model stood before any refit on validation data, for choices made on
        `data.validation` (a composite's weight). Models that refit override it."""
        self._check_fitted()
        return self.score

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores of the fitted dataset's `users`, given their train + validation interactions."""
        self._check_fitted()
        known = getattr(self, "known_", None)
        if known is None:
            raise NotFittedError(f"{type(self).__name__} was loaded from its state, which keeps no users: "
                                 "score their histories instead.")
        return self.score(known.take(np.asarray(users)))

    def recommend_histories(self, histories: Histories, k: int = 10,
                            exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and their scores for each history; -1 (score NaN) pads short lists."""
        return top_items(self.score(histories), histories, k, exclude_seen)

    def recommend(self, users: np.ndarray, k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        users = np.asarray(users)
        return top_items(self.score_users(users), self.known_.take(users), k, exclude_seen)


def top_items(raw: np.ndarray, histories: Histories, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
    """The k best items of each row of `raw` (the history's own items left out if asked)."""
    items, best = top_k_unseen(raw, *histories.pairs(exclude_seen), k)
    best = best.astype(np.result_type(raw, np.float32), copy=False)  # float32 stays float32
    finite = np.isfinite(best)
    return np.where(finite, items, -1), np.where(finite, best, np.nan)


def finite_scores(scores: np.ndarray, model: str) -> np.ndarray:
    """`scores`, unless a trained network produced NaN or infinity (TrainingDivergedError naming `model`)."""
    # The float64 sum of float32 scores is finite exactly when every score is (it cannot overflow,
    # NaN and infinities carry through): one pass, no block of flags.
    if not np.isfinite(np.sum(scores, dtype=np.float64)):
        raise TrainingDivergedError(f"{model} produced non-finite scores.")
    return scores
