"""The dataset every model family fits on, and users' histories in time order.

`Dataset` is what preprocessing builds and what training, evaluation and serving read: the id maps,
every interaction as an event (user, item, time, split) in each user's time order, the three splits
as users x items CSR matrices derived from the events, the item attribute table where the source
has one, and the fingerprint of the data. Nothing here densifies users x items.

`Histories` is how a model is asked to score users: each row a user's items, oldest first, so that
families that read order can, and the others take the 0/1 matrix.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2


@dataclass(frozen=True)
class Histories:
    """Ragged rows of item indices, each in time order (oldest first): row r is
    `items[indptr[r]:indptr[r + 1]]`."""

    indptr: np.ndarray
    items: np.ndarray
    n_items: int

    @classmethod
    def from_lists(cls, rows: Iterable[Sequence[int]], n_items: int) -> "Histories":
        rows = [np.asarray(r, dtype=np.int64) for r in rows]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.concatenate(rows).astype(np.int64) if rows else np.empty(0, np.int64)
        return cls(indptr, items, n_items)

    @classmethod
    def from_matrix(cls, matrix: sp.csr_matrix) -> "Histories":
        """Rows of a 0/1 matrix, each in column order (for data without order)."""
        m = matrix.tocsr()
        m.sort_indices()
        return cls(m.indptr.astype(np.int64), m.indices.astype(np.int64), m.shape[1])

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def pairs(self, at_all: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The (row, item) pair of each entry, as two arrays (none unless `at_all`: what a ranking
        leaves out when the rows' own items are not to be ranked)."""
        if not at_all:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.repeat(np.arange(len(self)), self.lengths), self.items

    def row(self, r: int) -> np.ndarray:
        return self.items[self.indptr[r] : self.indptr[r + 1]]

    def take(self, rows: np.ndarray, last: int | None = None) -> "Histories":
        """The rows `rows`, in that order; with `last`, each one's last `last` items only."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        if last is not None:
            starts = np.maximum(starts, stops - last)
        lengths = stops - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Positions of every kept entry: each row's start, plus 0..length-1.
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
        return Histories(indptr, self.items[np.repeat(starts, lengths) + offsets], self.n_items)

    def matrix(self) -> sp.csr_matrix:
        """The rows as a 0/1 CSR matrix (an item seen twice counts once)."""
        m = sp.csr_matrix((np.ones(len(self.items), np.float32), self.items, self.indptr),
                          shape=(len(self), self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m


@dataclass(frozen=True)
class Events:
    """Every interaction of the dataset: user and item indices, time (seconds since 1970; NaN
    where the data has none) and split (0 train, 1 validation, 2 test). Rows are ordered by user,
    then by time, ties in the order of the source file."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    split: np.ndarray

    @classmethod
    def build(cls, user: np.ndarray, item: np.ndarray, time: np.ndarray | None, split: np.ndarray) -> "Events":
        """Events in canonical order from arrays in source order."""
        user = np.asarray(user, dtype=np.int64)
        time = np.full(len(user), np.nan) if time is None else np.asarray(time, dtype=np.float64)
        # lexsort: the last key is the primary one; the source position breaks ties.
        order = np.lexsort((np.arange(len(user)), np.nan_to_num(time, nan=0.0), user))
        return cls(user[order].astype(np.int32), np.asarray(item)[order].astype(np.int32), time[order],
                   np.asarray(split)[order].astype(np.int8))

    def __len__(self) -> int:
        return len(self.user)

    def where(self, keep: np.ndarray) -> "Events":
        return Events(self.user[keep], self.item[keep], self.time[keep], self.split[keep])

    @property
    def has_time(self) -> bool:
        return len(self.time) > 0 and not np.isnan(self.time).any()


@dataclass
class Dataset:
    """Id maps, events and the splits derived from them, item attributes, fingerprint."""

    user_ids: np.ndarray
    """Index -> external user id (str)."""
    item_ids: np.ndarray
    """Index -> external item id (str)."""
    events: Events
    fingerprint: str
    items: pd.DataFrame | None = None
    """Item attributes where the source has them: one row per item, in `item_ids` order (missing
    values where an item has none), as validated by the item-attribute suite."""
    stats: dict[str, Any] = field(default_factory=dict)
    exclude_seen: bool = True
    """Whether rankings leave out what a user already has (`prepare.exclude_seen`)."""
    feature_config: Any = None
    """How `features` are made from `items` (`features.*`; None: the defaults)."""
    validation_users: int | None = None
    """Choices made on validation (early stopping, a lambda, a blend's weight) rank at most this
    many validation users, a seeded sample (`eval.validation_users`; None: all of them)."""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_users, self.n_items

    def matrix(self, *splits: str) -> sp.csr_matrix:
        """The 0/1 users x items matrix of the named splits' interactions."""
        codes = [SPLITS.index(s) for s in splits]
        keep = np.isin(self.events.split, codes)
        m = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (self.events.user[keep], self.events.item[keep])),
                          shape=self.shape)
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @functools.cached_property
    def train(self) -> sp.csr_matrix:
        return self.matrix("train")

    @functools.cached_property
    def validation(self) -> sp.csr_matrix:
        return self.matrix("validation")

    @functools.cached_property
    def scored_validation(self) -> sp.csr_matrix:
        """The validation split as choices score it: at most `validation_users` users' interactions."""
        from genrec.evaluation import sample_rows

        return sample_rows(self.validation, self.validation_users)

    @functools.cached_property
    def test(self) -> sp.csr_matrix:
        return self.matrix("test")

    @functools.cached_property
    def known(self) -> sp.csr_matrix:
        """What a model may condition on when the test split is scored: train + validation."""
        return self.matrix("train", "validation")

    @functools.cached_property
    def features(self):
        """The item attributes as one sparse items x features matrix (`genrec.attributes`); every
        row empty where the source has no attribute table."""
        from genrec.attributes import featurise

        return featurise(self.items, self.n_items, self.feature_config)

    @property
    def cold_items(self) -> np.ndarray:
        """Items with no training or validation interaction (a time cutoff can leave some: their
        attributes are all a model knows of them)."""
        return np.flatnonzero(np.asarray(self.known.sum(axis=0)).ravel() == 0)

    def seen(self, *splits: str) -> sp.csr_matrix:
        """What a ranking conditioned on the named splits leaves out: their items, or nothing
        where `exclude_seen` is off (a re-bought item can then be recommended and hit)."""
        if not self.exclude_seen:
            return sp.csr_matrix(self.shape, dtype=np.float32)
        if splits == ("train",):
            return self.train
        if splits == ("train", "validation"):
            return self.known
        return self.matrix(*splits)

    def histories(self, users: np.ndarray | None = None, splits: tuple[str, ...] = ("train", "validation")) -> Histories:
        """The users' interactions of the named splits, each in time order (all users if None)."""
        codes = [SPLITS.index(s) for s in splits]
        keep = np.isin(self.events.split, codes)
        user, item = self.events.user[keep], self.events.item[keep]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(user, minlength=self.n_users))]).astype(np.int64)
        every = Histories(indptr, item.astype(np.int64), self.n_items)
        return every if users is None else every.take(users)

    @property
    def train_cutoff(self) -> str | None:
        """Latest timestamp of what a model fits on (train and validation, ISO), when the data has
        timestamps."""
        fitted = self.events.where(self.events.split != TEST)
        if not self.events.has_time or len(fitted) == 0:
            return None
        return pd.Timestamp(float(fitted.time.max()), unit="s").isoformat()

    @property
    def test_time(self) -> sp.csr_matrix | None:
        """The test split's timestamps (seconds since 1970) in the test split's pattern, when the data
        has timestamps."""
        if not self.events.has_time:
            return None
        test = self.events.where(self.events.split == TEST)
        return sp.csr_matrix((test.time, (test.user, test.item)), shape=self.shape)

    def keep_test(self, keep: np.ndarray) -> "Dataset":
        """The same dataset with only the test interactions where `keep` (one flag per test event,
        in event order) is true."""
        mask = np.ones(len(self.events), dtype=bool)
        mask[np.flatnonzero(self.events.split == TEST)[~np.asarray(keep, dtype=bool)]] = False
        return Dataset(self.user_ids, self.item_ids, self.events.where(mask), self.fingerprint, self.items,
                       dict(self.stats), self.exclude_seen, self.feature_config, self.validation_users)

    def frame(self, rows: int | None = None) -> pd.DataFrame:
        """One row per interaction with string ids, its time and its split (the first `rows` only,
        if given): what MLflow records as the run's input dataset."""
        e = self.events if rows is None else Events(*(a[:rows] for a in (self.events.user, self.events.item,
                                                                            self.events.time, self.events.split)))
        return pd.DataFrame({
            "user_id": self.user_ids[e.user].astype(str),
            "item_id": self.item_ids[e.item].astype(str),
            "timestamp": pd.to_datetime(e.time, unit="s") if e.has_time else pd.NaT,
            "split": np.asarray(SPLITS)[e.split],
        })

    def save(self, directory: Path) -> Path:
        """Write the dataset under `directory` (arrays without pickles, uncompressed: compressing 20M
        events took longer than the rest of preparing them; ids and stats as JSON)."""
        directory.mkdir(parents=True, exist_ok=True)
        e = self.events
        np.savez(directory / "events.npz", user=e.user, item=e.item, time=e.time, split=e.split)
        (directory / "ids.json").write_text(json.dumps({"users": self.user_ids.astype(str).tolist(),
                                                        "items": self.item_ids.astype(str).tolist()}))
        (directory / "dataset.json").write_text(json.dumps({"fingerprint": self.fingerprint, "stats": self.stats},
                                                           indent=2, default=str))
        if self.items is not None:
            self.items.to_parquet(directory / "items.parquet", index=False)
        return directory

    @classmethod
    def load(cls, directory: Path) -> "Dataset":
        meta = json.loads((directory / "dataset.json").read_text())
        ids = json.loads((directory / "ids.json").read_text())
        with np.load(directory / "events.npz", allow_pickle=False) as a:
            events = Events(a["user"], a["item"], a["time"], a["split"])
        items_path = directory / "items.parquet"
        items = pd.read_parquet(items_path) if items_path.is_file() else None
        return cls(np.asarray(ids["users"], dtype=object), np.asarray(ids["items"], dtype=object), events,
                   meta["fingerprint"], items, meta["stats"])
