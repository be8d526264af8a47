"""Popularity: every user gets the most-interacted items. The floor any model must clear."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from genrec.dataset import Histories
from genrec.models.configs import PopConfig  # noqa: F401 - the family's config, re-exported
from genrec.models.base import ModelState, Recommender

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions


class Popularity(Recommender):
    name = "pop"

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "Popularity":
        self.popularity_ = np.asarray(data.train.sum(axis=0)).ravel().astype(np.float32)
        self.chosen_params_: dict = {}
        self._remember(data)
        return self

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.popularity_, (len(histories), len(self.popularity_)))

    def get_state(self) -> ModelState:
        self._check_fitted()
        return ModelState(arrays={"popularity": self.popularity_}, meta={"n_items": self.n_items_})

    @classmethod
    def from_state(cls, config: PopConfig, state: ModelState) -> "Popularity":
        model = cls(config)
        model.popularity_ = np.asarray(state.arrays["popularity"], dtype=np.float32)
        model.n_items_, model.chosen_params_ = state.meta["n_items"], {}
        return model
