"""Item-to-item transitions (a first-order Markov chain): a history is scored by how often each item
came right after its last item in the users' histories. The order-aware floor a sequence model must
clear; on shop logs it is a strong one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from genrec.dataset import Histories
from genrec.models.configs import TransitionsConfig  # noqa: F401 - the family's config, re-exported
from genrec.models.base import Capabilities, ModelState, Recommender, Scorer

if TYPE_CHECKING:
    from genrec.dataset import Dataset
    from genrec.training import FitOptions


def transition_counts(histories: Histories) -> sp.csr_matrix:
    """items x items counts of (a, b): b came right after a in some history."""
    items = histories.items
    follows = np.ones(len(items), dtype=bool)
    follows[histories.indptr[:-1][histories.lengths > 0]] = False  # a history's first item follows nothing
    after = np.flatnonzero(follows)
    counts = sp.csr_matrix((np.ones(len(after), np.float32), (items[after - 1], items[after])),
                           shape=(histories.n_items, histories.n_items))
    counts.sum_duplicates()
    return counts


def _scorer(counts: sp.csr_matrix, popularity: np.ndarray) -> Scorer:
    # Popularity, scaled below one transition, orders the items no transition separates.
    tie_break = (popularity / (popularity.max() + 1.0) if len(popularity) and popularity.max() > 0
                 else np.zeros_like(popularity)).astype(np.float32)

    def score(histories: Histories) -> np.ndarray:
        scores = np.tile(tie_break, (len(histories), 1))
        has = np.flatnonzero(histories.lengths > 0)
        if len(has):
            last = histories.items[histories.indptr[has + 1] - 1]
            scores[has] += counts[last].toarray()
        return scores

    return score


class Transitions(Recommender):
    name = "transitions"
    capabilities = Capabilities(uses_order=True)

    def fit(self, data: "Dataset", options: "FitOptions | None" = None) -> "Transitions":
        known = data.histories(splits=("train", "validation"))
        self.counts_ = transition_counts(known)
        self.popularity_ = np.bincount(known.items, minlength=data.n_items).astype(np.float32)
        self.chosen_params_: dict = {}
        self._remember(data)
        return self

    def score(self, histories: Histories) -> np.ndarray:
        self._check_fitted()
        return _scorer(self.counts_, self.popularity_)(histories)

    def validation_scorer(self, data: "Dataset") -> Scorer:
        """Transitions counted on the training split alone."""
        self._check_fitted()
        train = data.histories(splits=("train",))
        return _scorer(transition_counts(train), np.bincount(train.items, minlength=data.n_items).astype(np.float32))

    def get_state(self) -> ModelState:
        self._check_fitted()
        c = self.counts_
        return ModelState(arrays={"counts.indptr": c.indptr.astype(np.int64), "counts.indices": c.indices.astype(np.int64),
                                  "counts.data": c.data, "popularity": self.popularity_},
                          meta={"n_items": self.n_items_})

    @classmethod
    def from_state(cls, config: TransitionsConfig, state: ModelState) -> "Transitions":
        model = cls(config)
        n = state.meta["n_items"]
        a = state.arrays
        model.counts_ = sp.csr_matrix((a["counts.data"], a["counts.indices"], a["counts.indptr"]), shape=(n, n))
        model.popularity_ = np.asarray(a["popularity"], dtype=np.float32)
        model.n_items_, model.chosen_params_ = n, {}
        return model
