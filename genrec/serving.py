"""What a served model does with a request: string ids in, top-K string ids and scores out.

`ServingModel` is everything the registered model needs at inference time: the fitted recommender,
the id maps, every known user's interactions in time order and a popularity ranking for the
fallback. It is saved as data (JSON and safetensors, `save`/`load`) and loaded by the installed
genrec; the MLflow pyfunc wrapper in `genrec.registry` only delegates to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.dataset import Dataset, Histories
from genrec.errors import UnloadableModelError
from genrec.models.artifacts import load_model, save_model
from genrec.models.base import Recommender

FORMAT = 1

RESPONSE_COLUMNS = ["user_id", "items", "scores", "names", "fallback"]
"""SPEC's prediction fields: the items (string ids), their scores, their display names (None where
the catalogue has none) and whether the answer is the popularity fallback."""

NAME_COLUMNS = ("title", "description", "name")
"""Item attribute columns that hold a display name (MovieLens titles, Online Retail descriptions)."""


class BadRequest(ValueError):
    """A request the model cannot answer as asked (a 4xx, not a crash)."""


@dataclass
class ServingModel:
    model: Recommender
    user_ids: np.ndarray
    item_ids: np.ndarray
    histories: Histories
    """Every known user's interactions (all splits), oldest first."""
    popularity: np.ndarray
    model_family: str
    data_fingerprint: str
    exclude_seen: bool = True
    """Whether answers leave out the items of the history they are for (`prepare.exclude_seen`)."""
    names: np.ndarray | None = None
    """Each item's display name (None where it has none); None where the catalogue has no names."""

    @classmethod
    def build(cls, model: Recommender, data: Dataset, family: str) -> "ServingModel":
        return cls(
            model=model,
            user_ids=data.user_ids.astype(str),
            item_ids=data.item_ids.astype(str),
            histories=data.histories(splits=("train", "validation", "test")),  # served users: everything they did
            popularity=np.asarray(data.train.sum(axis=0)).ravel().astype(np.float64),
            model_family=family,
            data_fingerprint=data.fingerprint,
            exclude_seen=data.exclude_seen,
            names=display_names(data),
        )

    def __post_init__(self) -> None:
        self._user_index = pd.Index(self.user_ids)
        self._item_index = pd.Index(self.item_ids)

    # --- as files -------------------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        from safetensors.numpy import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_model(self.model, directory / "model")
        save_file({"histories.indptr": self.histories.indptr, "histories.items": self.histories.items,
                   "popularity": self.popularity}, str(directory / "serving.safetensors"))
        (directory / "serving.json").write_text(json.dumps({
            "format": FORMAT, "model_family": self.model_family, "data_fingerprint": self.data_fingerprint,
            "exclude_seen": self.exclude_seen,
            "item_names": None if self.names is None else self.names.tolist(), "user_ids": self.user_ids.tolist(), "item_ids": self.item_ids.tolist()}))
        return directory

    @classmethod
    def load(cls, directory: Path) -> "ServingModel":
        from safetensors.numpy import load_file

        path = directory / "serving.json"
        if not path.is_file():
            raise UnloadableModelError(f"{directory} holds no genrec serving model (no serving.json).")
        spec = json.loads(path.read_text())
        if spec.get("format") != FORMAT:
            raise UnloadableModelError(f"{path} is in serving format {spec.get('format')!r}; this genrec reads "
                                       f"format {FORMAT}.")
        arrays = load_file(str(directory / "serving.safetensors"))
        item_ids = np.asarray(spec["item_ids"], dtype=str)
        names = spec.get("item_names")
        return cls(model=load_model(directory / "model"), user_ids=np.asarray(spec["user_ids"], dtype=str),
                   item_ids=item_ids, histories=Histories(arrays["histories.indptr"], arrays["histories.items"],
                                                          len(item_ids)),
                   popularity=arrays["popularity"], model_family=spec["model_family"],
                   data_fingerprint=spec["data_fingerprint"], exclude_seen=spec.get("exclude_seen", True),
                   names=None if names is None else np.asarray(names, dtype=object))

    # --- answering ------------------------------------------------------------------------------

    @property
    def item_index(self) -> pd.Index:
        return self._item_index

    def _histories(self, frame: pd.DataFrame) -> Histories:
        """One row per request: the given history in its order (unknown items ignored), else the
        known user's recorded one. The given ids of all rows are looked up together (`positions`)."""
        n = len(frame)
        users = frame["user_id"].astype(str).to_numpy() if "user_id" in frame else np.array([""] * n)
        given = frame["history"] if "history" in frame else pd.Series([None] * n)
        lists = []
        for i, hist in enumerate(given):
            if hist is None or (isinstance(hist, float) and np.isnan(hist)):
                hist = []
            if isinstance(hist, str):
                hist = [h for h in hist.split(",") if h]
            if not isinstance(hist, (list, tuple, np.ndarray)):
                raise BadRequest(f"history of row {i} must be a list of item ids, got {type(hist).__name__}.")
            lists.append(hist)
        found, lengths = positions(lists, self._item_index)
        user_pos = self._user_index.get_indexer(users)
        rows = []
        for i, idx in enumerate(np.split(found, np.cumsum(lengths)[:-1])):
            idx = idx[idx >= 0]
            if len(idx) == 0 and user_pos[i] >= 0:
                idx = self.histories.row(user_pos[i])
            rows.append(idx)
        return Histories.from_lists(rows, len(self.item_ids))

    def recommend_indices(self, frame: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k item indices (-1 pads) and scores for each request row, and which rows got the
        popularity fallback (an empty or unknown history)."""
        if k < 1:
            raise BadRequest(f"k must be a positive integer, got {k}.")
        if "user_id" not in frame and "history" not in frame:
            raise BadRequest("each record needs a 'user_id' or a 'history'.")
        histories = self._histories(frame)
        items, scores = self.model.recommend_histories(histories, k=k, exclude_seen=self.exclude_seen)
        empty = histories.lengths == 0
        if empty.any():
            order = np.argsort(-self.popularity, kind="stable")[:k]
            items[empty] = -1
            items[empty, : len(order)] = order
            scores[empty] = np.nan
            scores[empty, : len(order)] = self.popularity[order]
        return items, scores, empty

    def predict(self, frame: pd.DataFrame, k: int = 10, batch_rows: int = 256) -> pd.DataFrame:
        """SPEC's response rows (`RESPONSE_COLUMNS`). Rows are scored `batch_rows` at a time: the
        dense scores of one batch are all the memory a request takes."""
        users = frame["user_id"].astype(str).tolist() if "user_id" in frame else [""] * len(frame)
        out_items, out_scores, out_names, out_fallback = [], [], [], []
        for start in range(0, len(frame), batch_rows):
            items, scores, fallback = self.recommend_indices(frame.iloc[start:start + batch_rows], k)
            for row_items, row_scores in zip(items, scores):
                kept = row_items[row_items >= 0]
                out_items.append(self.item_ids[kept].tolist())
                out_scores.append([float(s) for s in row_scores[row_items >= 0]])
                out_names.append([None] * len(kept) if self.names is None else self.names[kept].tolist())
            out_fallback.extend(bool(f) for f in fallback)
        return pd.DataFrame({"user_id": users, "items": out_items, "scores": out_scores, "names": out_names,
                             "fallback": out_fallback}, columns=RESPONSE_COLUMNS)


def request_frame(data: Dataset, users: np.ndarray) -> pd.DataFrame:
    """Requests for `users` of `data`, each with its known history (train + validation, in time
    order) as string ids."""
    known = data.histories(users, splits=("train", "validation"))
    histories = [data.item_ids[known.row(r)].astype(str).tolist() for r in range(len(known))]
    return pd.DataFrame({"user_id": data.user_ids[users].astype(str), "history": histories})


def ranked_from_predictions(predictions: pd.DataFrame, item_index: pd.Index, k: int) -> np.ndarray:
    """Map predicted string ids back to `item_index` positions (-1 for items it does not know)."""
    ranked = np.full((len(predictions), k), -1, dtype=np.int64)
    found, lengths = positions([list(items)[:k] for items in predictions["items"]], item_index)
    row = np.repeat(np.arange(len(lengths)), lengths)
    column = np.arange(len(found)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    ranked[row, column] = found
    return ranked


def positions(lists: list, index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """The position in `index` of every id of every list, one after the other (-1 where unknown), and
    each list's length: one lookup for all of them (a pandas lookup has a fixed cost, which one per
    row paid 20,000 times over when the gate scored its test users)."""
    lengths = np.array([len(ids) for ids in lists], dtype=np.int64)
    flat = [str(x) for ids in lists for x in ids]
    return (index.get_indexer(flat) if flat else np.empty(0, dtype=np.int64)), lengths


def display_names(data: Dataset) -> np.ndarray | None:
    """Each item's display name from the first name column of `data`'s attribute table (None for an
    item without one), or None where the table has no such column."""
    table = data.items
    column = next((c for c in NAME_COLUMNS if table is not None and c in table), None)
    if column is None:
        return None
    names = table[column].astype(object).to_numpy()
    return np.array([n.strip() if isinstance(n, str) and n.strip() else None for n in names], dtype=object)


def example_request(served: ServingModel, n_items: int = 3) -> pd.DataFrame:
    """The input example logged with the model (also the infrastructure check's request):
    the first known user with a few of their items."""
    user = int(np.argmax(served.histories.lengths > 0))
    items = served.item_ids[served.histories.row(user)[:n_items]].tolist()
    return pd.DataFrame({"user_id": [str(served.user_ids[user])], "history": [items]})


def check_served(model) -> None:
    """The infrastructure check before any promotion: a model loaded back as a server would load
    it answers its own input example with the response shape SPEC promises."""
    from genrec.errors import ServingCheckError

    example = getattr(model, "input_example", None)
    if example is None:
        raise ServingCheckError("The logged model has no input example to check it with.")
    out = model.predict(example, params={"k": 3})
    if list(out.columns) != RESPONSE_COLUMNS or len(out) != len(example):
        raise ServingCheckError(f"The logged model answered its input example with columns {list(out.columns)}.")
    if not all(len(items) == len(scores) > 0 for items, scores in zip(out["items"], out["scores"])):
        raise ServingCheckError("The logged model answered its input example with no recommendations.")


def evaluate_served(model, data: Dataset, ks: tuple[int, ...]):
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

