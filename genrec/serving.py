"""What a served model does with a request: string ids in, top-K string ids and scores out.

`ServingBundle` is everything the registered model needs at inference time: the fitted recommender,
the id maps, the known users' histories and a popularity ranking for the fallback. It is plain
Python; the MLflow pyfunc wrapper in `genrec.registry` only delegates to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genrec.models.base import Recommender
from genrec.preprocessing import PreparedData


class BadRequest(ValueError):
    """A request the model cannot answer as asked (a 4xx, not a crash)."""


@dataclass
class ServingBundle:
    model: Recommender
    user_ids: np.ndarray
    item_ids: np.ndarray
    histories: sp.csr_matrix
    popularity: np.ndarray
    model_family: str
    data_fingerprint: str

    @classmethod
    def build(cls, model: Recommender, data: PreparedData) -> "ServingBundle":
        # Served users are conditioned on everything they did, held-out splits included.
        everything = (data.train + data.validation + data.test).tocsr()
        return cls(
            model=model,
            user_ids=data.user_ids.astype(str),
            item_ids=data.item_ids.astype(str),
            histories=everything,
            popularity=np.asarray(data.train.sum(axis=0)).ravel(),
            model_family=model.name,
            data_fingerprint=data.fingerprint,
        )

    def __post_init__(self) -> None:
        self._user_index = pd.Index(self.user_ids)
        self._item_index = pd.Index(self.item_ids)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_user_index", None)
        state.pop("_item_index", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def item_index(self) -> pd.Index:
        return self._item_index

    def _history_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """One row per request: the given history (unknown items ignored), else the known user's."""
        n = len(frame)
        users = frame["user_id"].astype(str).to_numpy() if "user_id" in frame else np.array([""] * n)
        given = frame["history"] if "history" in frame else pd.Series([None] * n)
        rows, cols = [], []
        user_pos = self._user_index.get_indexer(users)
        for i, (hist, upos) in enumerate(zip(given, user_pos)):
            if hist is None or (isinstance(hist, float) and np.isnan(hist)):
                hist = []
            if isinstance(hist, str):
                hist = [h for h in hist.split(",") if h]
            if not isinstance(hist, (list, tuple, np.ndarray)):
                raise BadRequest(f"history of row {i} must be a list of item ids, got {type(hist).__name__}.")
            idx = self._item_index.get_indexer([str(h) for h in hist]) if len(hist) else np.array([], dtype=int)
            idx = idx[idx >= 0]
            if len(idx) == 0 and upos >= 0:
                h = self.histories
                idx = h.indices[h.indptr[upos] : h.indptr[upos + 1]]
            rows.extend([i] * len(idx))
            cols.extend(idx.tolist())
        data = np.ones(len(rows), dtype=np.float32)
        m = sp.csr_matrix((data, (rows, cols)), shape=(n, len(self.item_ids)))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def recommend_indices(self, frame: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices (-1 pads) and scores for each request row."""
        if k < 1:
            raise BadRequest(f"k must be a positive integer, got {k}.")
        if "user_id" not in frame and "history" not in frame:
            raise BadRequest("each record needs a 'user_id' or a 'history'.")
        history = self._history_matrix(frame)
        items, scores = self.model.recommend_history(history, k=k, exclude_seen=True)
        empty = np.diff(history.indptr) == 0
        if empty.any():
            order = np.argsort(-self.popularity, kind="stable")[:k]
            items[empty] = -1
            items[empty, : len(order)] = order
            scores[empty] = np.nan
            scores[empty, : len(order)] = self.popularity[order]
        return items, scores

    def predict(self, frame: pd.DataFrame, k: int = 10) -> pd.DataFrame:
        """SPEC's response rows: user_id, items (list of str), scores (list of float)."""
        items, scores = self.recommend_indices(frame, k)
        users = frame["user_id"].astype(str).tolist() if "user_id" in frame else [""] * len(frame)
        out_items, out_scores = [], []
        for row_items, row_scores in zip(items, scores):
            keep = row_items >= 0
            out_items.append(self.item_ids[row_items[keep]].tolist())
            out_scores.append([float(s) for s in row_scores[keep]])
        return pd.DataFrame({"user_id": users, "items": out_items, "scores": out_scores})


def request_frame(data: PreparedData, users: np.ndarray) -> pd.DataFrame:
    """Requests for `users` of `data`, each with its known history as string ids."""
    known = data.known
    histories = [
        data.item_ids[known.indices[known.indptr[u] : known.indptr[u + 1]]].astype(str).tolist() for u in users
    ]
    return pd.DataFrame({"user_id": data.user_ids[users].astype(str), "history": histories})


def ranked_from_predictions(predictions: pd.DataFrame, item_index: pd.Index, k: int) -> np.ndarray:
    """Map predicted string ids back to `item_index` positions (-1 for items it does not know)."""
    ranked = np.full((len(predictions), k), -1, dtype=np.int64)
    for i, items in enumerate(predictions["items"]):
        idx = item_index.get_indexer([str(x) for x in list(items)[:k]])
        ranked[i, : len(idx)] = idx
    return ranked


def example_request(bundle: ServingBundle, n_items: int = 3) -> pd.DataFrame:
    """The input example logged with the model (also the infrastructure check's request):
    the first known user with a few of their items."""
    h = bundle.histories
    user = int(np.argmax(np.diff(h.indptr) > 0))
    items = bundle.item_ids[h.indices[h.indptr[user] : h.indptr[user] + n_items]].tolist()
    return pd.DataFrame({"user_id": [str(bundle.user_ids[user])], "history": [items]})


def check_served(model) -> None:
    """The infrastructure check before any promotion: a model loaded back as a server would load
    it answers its own input example with the response shape SPEC promises."""
    from genrec.errors import ServingCheckError

    example = getattr(model, "input_example", None)
    if example is None:
        raise ServingCheckError("The logged model has no input example to check it with.")
    out = model.predict(example, params={"k": 3})
    if list(out.columns) != ["user_id", "items", "scores"] or len(out) != len(example):
        raise ServingCheckError(f"The logged model answered its input example with columns {list(out.columns)}.")
    if not all(len(items) == len(scores) > 0 for items, scores in zip(out["items"], out["scores"])):
        raise ServingCheckError("The logged model answered its input example with no recommendations.")


def evaluate_served(model, data: PreparedData, ks: tuple[int, ...]):
    """Score `data`'s test users through a served model's interface (`predict(frame, params=)`),
    with string ids both ways, and measure the rankings like any other model's."""
    from genrec.evaluation import evaluate_ranked

    users = np.flatnonzero(np.diff(data.test.indptr) > 0)
    k = max(ks)
    if len(users) == 0:
        return evaluate_ranked(np.empty((0, k), dtype=np.int64), users, data.test, ks)
    predictions = model.predict(request_frame(data, users), params={"k": k})
    ranked = ranked_from_predictions(predictions, pd.Index(data.item_ids.astype(str)), k)
    return evaluate_ranked(ranked, users, data.test, ks)
