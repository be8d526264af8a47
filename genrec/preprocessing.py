"""Preprocessing: implicit feedback, id maps, a seeded per-user split and a data fingerprint, built
into the `Dataset` every model family fits on.

Interactions stay sparse from here on; nothing densifies the users x items matrix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genrec.dataset import Dataset, Events

if TYPE_CHECKING:
    from genrec.config import DataConfig, PrepareConfig

log = logging.getLogger(__name__)


def to_implicit(interactions: pd.DataFrame, data: "DataConfig", prepare: "PrepareConfig") -> pd.DataFrame:
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


def fingerprint(interactions: pd.DataFrame, prepare: "PrepareConfig") -> str:
    """A hash of what the split is a function of: the (user, item, timestamp) rows in their order
    (the seeded split assigns rows by position, so the same rows in another order split otherwise)
    and the split's settings. Equal fingerprints: the same dataset, split for split."""
    keys = interactions[["user_id", "item_id"]].astype(str)
    if "timestamp" in interactions and interactions["timestamp"].notna().any():
        keys = keys.assign(timestamp=interactions["timestamp"].astype(str))
    rows = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    settings = json.dumps(dataclasses.asdict(prepare), sort_keys=True).encode()
    return hashlib.sha256(rows.tobytes() + settings).hexdigest()[:16]


def split_per_user(users: np.ndarray, n_users: int, prepare: "PrepareConfig", test_fraction: float | None = None,
                   validation_fraction: float | None = None) -> np.ndarray:
    """Assign each interaction to 0 (train), 1 (validation) or 2 (test), seeded, per user.

    A user with n >= `min_interactions_to_split` interactions gives round(test_fraction * n) (at least
    one) to test and round(validation_fraction * rest) (at least one if two remain) to validation;
    a fraction of 0 gives none. The fractions are `prepare`'s unless given.
    """
    test_fraction = prepare.test_fraction if test_fraction is None else test_fraction
    validation_fraction = prepare.validation_fraction if validation_fraction is None else validation_fraction
    rank = random_rank_per_user(users, n_users, np.random.default_rng(prepare.seed))
    n = np.bincount(users, minlength=n_users)[users]
    splittable = n >= prepare.min_interactions_to_split
    n_test = np.where(splittable & (test_fraction > 0), np.maximum(1, np.rint(test_fraction * n)), 0)
    rest = n - n_test
    n_val = np.where(
        splittable & (rest >= 2) & (validation_fraction > 0),
        np.maximum(1, np.rint(validation_fraction * rest)),
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


def _seconds(timestamps: pd.Series) -> np.ndarray | None:
    """Seconds since 1970 (float), or None unless every row has a timestamp."""
    if len(timestamps) == 0 or not timestamps.notna().all():
        return None
    if pd.api.types.is_numeric_dtype(timestamps):
        return timestamps.to_numpy(dtype=np.float64)
    return ((pd.to_datetime(timestamps) - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def _stats(data: Dataset) -> dict[str, float]:
    counts = np.bincount(data.events.split, minlength=3)
    return {"users": data.n_users, "items": data.n_items, "interactions": len(data.events),
            "train": int(counts[0]), "validation": int(counts[1]), "test": int(counts[2]),
            "density": len(data.events) / max(1, data.n_users * data.n_items)}


def prepare(implicit: pd.DataFrame, prepare: "PrepareConfig", items: pd.DataFrame | None = None) -> Dataset:
    """Id maps, split and fingerprint of the implicit interactions (and the item attribute table,
    aligned to the item ids, where the source has one)."""
    user_codes, user_ids = pd.factorize(implicit["user_id"], sort=True)
    item_codes, item_ids = pd.factorize(implicit["item_id"], sort=True)
    part = split_per_user(user_codes, len(user_ids), prepare)
    events = Events.build(user_codes, item_codes, _seconds(implicit["timestamp"]), part)
    item_ids = np.asarray(item_ids, dtype=object)
    data = Dataset(user_ids=np.asarray(user_ids, dtype=object), item_ids=item_ids, events=events,
                   fingerprint=fingerprint(implicit, prepare), items=_aligned(items, item_ids))
    data.stats = _stats(data)
    log.info("prepared %s", data.stats)
    return data


def _aligned(items: pd.DataFrame | None, item_ids: np.ndarray) -> pd.DataFrame | None:
    """The attribute table with one row per item id, in `item_ids` order."""
    if items is None:
        return None
    table = items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
    return table.reindex(pd.Index(item_ids.astype(str), name="item_id")).reset_index()


def from_split(train: pd.DataFrame, test: pd.DataFrame, prepare_cfg: "PrepareConfig") -> Dataset:
    """A dataset from a given train/test split (e.g. the CFGAN authors'): validation is carved out
    of train per user, with the same seeded rule; test interactions of unknown items are dropped."""
    user_codes, user_ids = pd.factorize(pd.concat([train["user_id"], test["user_id"]]), sort=True)
    item_codes, item_ids = pd.factorize(train["item_id"], sort=True)
    n_train = len(train)
    tr_users = user_codes[:n_train]
    te_users = user_codes[n_train:]
    te_items = pd.Index(item_ids).get_indexer(test["item_id"])
    keep = te_items >= 0
    # The validation carve-out, drawn as split_per_user draws a test split (it marks it 2).
    part = split_per_user(tr_users, len(user_ids), prepare_cfg, test_fraction=prepare_cfg.validation_fraction,
                          validation_fraction=0.0)
    split = np.concatenate([np.where(part == 2, 1, 0), np.full(int(keep.sum()), 2)])
    times = [_seconds(train["timestamp"]) if "timestamp" in train else None,
             _seconds(test["timestamp"][keep]) if "timestamp" in test else None]
    time = np.concatenate(times) if all(t is not None for t in times) else None
    events = Events.build(np.concatenate([tr_users, te_users[keep]]), np.concatenate([item_codes, te_items[keep]]),
                          time, split)
    data = Dataset(user_ids=np.asarray(user_ids, dtype=object), item_ids=np.asarray(item_ids, dtype=object),
                   events=events, fingerprint=fingerprint(pd.concat([train, test]), prepare_cfg))
    data.stats = _stats(data) | {"test_dropped_unknown_items": int((~keep).sum())}
    return data
