"""Preprocessing: implicit feedback, id maps, a seeded per-user split and a data fingerprint.

Interactions stay sparse (SciPy CSR, users x items) from here on; nothing densifies the full matrix.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from genrec.config import DataConfig, PrepareConfig

log = logging.getLogger(__name__)


def to_implicit(interactions: pd.DataFrame, data: DataConfig, prepare: PrepareConfig) -> pd.DataFrame:
    """Keep positives (rating >= threshold if one is set), one row per (user, item), latest first seen.

    Then drop users and items below the configured minimum counts (once, in that order).
    """
    df = interactions
    if data.rating_threshold is not None and df["rating"].notna().any():
        df = df[df["rating"] >= data.rating_threshold]
    df = df.sort_values("timestamp", kind="stable").drop_duplicates(["user_id", "item_id"], keep="last")
    if prepare.min_user_interactions > 1:
        counts = df["user_id"].map(df["user_id"].value_counts())
        df = df[counts >= prepare.min_user_interactions]
    if prepare.min_item_interactions > 1:
        counts = df["item_id"].map(df["item_id"].value_counts())
        df = df[counts >= prepare.min_item_interactions]
    return df.reset_index(drop=True)


def fingerprint(interactions: pd.DataFrame) -> str:
    """A content hash of the (user, item, timestamp) rows, independent of their order."""
    keys = interactions[["user_id", "item_id"]].astype(str)
    if "timestamp" in interactions and interactions["timestamp"].notna().any():
        keys = keys.assign(timestamp=interactions["timestamp"].astype(str))
    hashed = np.sort(pd.util.hash_pandas_object(keys, index=False).to_numpy())
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


@dataclass
class PreparedData:
    """The prepared dataset: id maps and the three splits as users x items CSR matrices."""

    user_ids: np.ndarray
    """Index -> external user id (str)."""
    item_ids: np.ndarray
    """Index -> external item id (str)."""
    train: sp.csr_matrix
    validation: sp.csr_matrix
    test: sp.csr_matrix
    fingerprint: str
    train_cutoff: str | None = None
    """Latest timestamp of what a model fits on (train and validation splits, ISO), when the data
    has timestamps."""
    test_time: sp.csr_matrix | None = None
    """The test split's timestamps (seconds since 1970, float) in the test split's pattern, when
    the data has timestamps."""
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def known(self) -> sp.csr_matrix:
        """Everything a model may condition on when scoring the test split (train + validation)."""
        return (self.train + self.validation).tocsr()

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("train", "validation", "test"):
            sp.save_npz(directory / f"{name}.npz", getattr(self, name))
        np.save(directory / "user_ids.npy", self.user_ids.astype(str))
        np.save(directory / "item_ids.npy", self.item_ids.astype(str))
        return directory


def _csr(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def split_per_user(
    users: np.ndarray, n_users: int, prepare: PrepareConfig
) -> np.ndarray:
    """Assign each interaction to 0 (train), 1 (validation) or 2 (test), seeded, per user.

    A user with n >= `min_interactions_to_split` interactions gives round(test_fraction * n) (at least
    one) to test and round(validation_fraction * rest) (at least one if two remain) to validation;
    a fraction of 0 gives none.
    """
    rank = random_rank_per_user(users, n_users, np.random.default_rng(prepare.seed))
    n = np.bincount(users, minlength=n_users)[users]
    splittable = n >= prepare.min_interactions_to_split
    n_test = np.where(splittable & (prepare.test_fraction > 0), np.maximum(1, np.rint(prepare.test_fraction * n)), 0)
    rest = n - n_test
    n_val = np.where(
        splittable & (rest >= 2) & (prepare.validation_fraction > 0),
        np.maximum(1, np.rint(prepare.validation_fraction * rest)),
        0,
    )
    return np.where(rank < n_test, 2, np.where(rank < n_test + n_val, 1, 0)).astype(np.int8)


def random_rank_per_user(users: np.ndarray, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Each interaction's place (0, 1, ...) in a random order of its user's interactions: the first
    n of a user are a random draw of n of them."""
    order = np.lexsort((rng.random(len(users)), users))
    starts = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))[:-1]])
    rank = np.empty(len(users), dtype=np.int64)
    rank[order] = np.arange(len(users)) - starts[users[order]]
    return rank


def prepare(implicit: pd.DataFrame, prepare: PrepareConfig) -> PreparedData:
    """Id maps, split and fingerprint of the implicit interactions."""
    user_codes, user_ids = pd.factorize(implicit["user_id"], sort=True)
    item_codes, item_ids = pd.factorize(implicit["item_id"], sort=True)
    shape = (len(user_ids), len(item_ids))
    part = split_per_user(user_codes, shape[0], prepare)
    splits = {
        name: _csr(user_codes[part == code], item_codes[part == code], shape)
        for code, name in enumerate(("train", "validation", "test"))
    }
    cutoff = None
    test_time = None
    if implicit["timestamp"].notna().all():
        seen = implicit["timestamp"][part != 2]
        cutoff = pd.Timestamp(seen.max()).isoformat() if len(seen) else None
        seconds = (implicit["timestamp"] - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        is_test = part == 2
        test_time = sp.csr_matrix((seconds.to_numpy()[is_test], (user_codes[is_test], item_codes[is_test])), shape=shape)
    stats = {
        "users": shape[0],
        "items": shape[1],
        "interactions": len(implicit),
        "train": int(splits["train"].nnz),
        "validation": int(splits["validation"].nnz),
        "test": int(splits["test"].nnz),
        "density": len(implicit) / max(1, shape[0] * shape[1]),
    }
    log.info("prepared %s", stats)
    return PreparedData(
        user_ids=np.asarray(user_ids, dtype=object),
        item_ids=np.asarray(item_ids, dtype=object),
        fingerprint=fingerprint(implicit),
        train_cutoff=cutoff,
        test_time=test_time,
        stats=stats,
        **splits,
    )


def from_split(train: pd.DataFrame, test: pd.DataFrame, prepare_cfg: PrepareConfig) -> PreparedData:
    """A dataset from a given train/test split (e.g. the CFGAN authors'): validation is carved out
    of train per user, with the same seeded rule; test interactions of unknown items are dropped."""
    user_codes, user_ids = pd.factorize(pd.concat([train["user_id"], test["user_id"]]), sort=True)
    item_codes, item_ids = pd.factorize(train["item_id"], sort=True)
    n_train = len(train)
    shape = (len(user_ids), len(item_ids))
    tr_users, tr_items = user_codes[:n_train], item_codes
    te_users = user_codes[n_train:]
    te_items = pd.Index(item_ids).get_indexer(test["item_id"])
    keep = te_items >= 0
    carve = PrepareConfig(
        test_fraction=prepare_cfg.validation_fraction,
        validation_fraction=0.0,
        min_interactions_to_split=prepare_cfg.min_interactions_to_split,
        seed=prepare_cfg.seed,
    )
    part = split_per_user(tr_users, shape[0], carve)  # 2 marks the validation carve-out here
    both = pd.concat([train, test])
    return PreparedData(
        user_ids=np.asarray(user_ids, dtype=object),
        item_ids=np.asarray(item_ids, dtype=object),
        train=_csr(tr_users[part == 0], tr_items[part == 0], shape),
        validation=_csr(tr_users[part == 2], tr_items[part == 2], shape),
        test=_csr(te_users[keep], te_items[keep], shape),
        fingerprint=fingerprint(both),
        stats={"users": shape[0], "items": shape[1], "train": n_train, "test": int(keep.sum()),
               "test_dropped_unknown_items": int((~keep).sum())},
    )
