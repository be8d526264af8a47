"""Preprocessing: implicit feedback, id maps, a split (seeded per user, or by time) and a data fingerprint, built
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
from genrec.errors import DataError

if TYPE_CHECKING:
    from genrec.config import DataConfig, PrepareConfig

log = logging.getLogger(__name__)


def to_implicit(interactions: pd.DataFrame, data: "DataConfig", prepare: "PrepareConfig") -> pd.DataFrame:
    """Keep positives (rating >= threshold if one is set), one row per (user, item): its latest
    occurrence, or its first with `prepare.repeats = "first"`, or with `"all"` one per (user, item,
    timestamp) (a re-buy at another time is a new row); rows end in time order, ties in file order.

    Then drop users and items below the configured minimum counts (once, in that order).
    """
    df = interactions
    if data.rating_threshold is not None and df["rating"].notna().any():
        df = df[df["rating"] >= data.rating_threshold]
    df = df.sort_values("timestamp", kind="stable")
    if prepare.repeats == "all":
        df = df.drop_duplicates(["user_id", "item_id", "timestamp"])
    else:
        df = df.drop_duplicates(["user_id", "item_id"], keep=prepare.repeats)
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
        # Nanoseconds as integers: formatting 20M timestamps as text took minutes.
        stamps = pd.to_datetime(interactions["timestamp"]).to_numpy(dtype="datetime64[ns]")
        keys = keys.assign(timestamp=stamps.view(np.int64))
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


def rank_from_end(users: np.ndarray, time: np.ndarray | None, n_users: int) -> np.ndarray:
    """Each interaction's place counted back from its user's latest (0 = the last), in time order with
    ties in the order given (the order `Events` keeps)."""
    time = np.zeros(len(users)) if time is None else np.nan_to_num(time, nan=0.0)
    order = np.lexsort((np.arange(len(users)), time, users))
    ends = np.cumsum(np.bincount(users, minlength=n_users))
    from_end = np.empty(len(users), dtype=np.int64)
    from_end[order] = ends[users[order]] - 1 - np.arange(len(users))
    return from_end


def split_last_per_user(users: np.ndarray, time: np.ndarray | None, n_users: int, prepare: "PrepareConfig"
                        ) -> np.ndarray:
    """Leave-last-out: each user's last interaction is test (2), the one before validation (1), the
    rest train (0); users with fewer than `min_interactions_to_split` keep all in train."""
    from_end = rank_from_end(users, time, n_users)
    splittable = np.bincount(users, minlength=n_users)[users] >= prepare.min_interactions_to_split
    return np.where(splittable & (from_end == 0), 2, np.where(splittable & (from_end == 1), 1, 0)).astype(np.int8)


def split_by_time(users: np.ndarray, time: np.ndarray, n_users: int, cutoff: float) -> np.ndarray:
    """A global cutoff: interactions at or after `cutoff` (seconds) are test (2); of those before, each
    user's last is validation (1) where the user has two or more before it."""
    before = time < cutoff
    part = np.where(before, 0, 2).astype(np.int8)
    idx = np.flatnonzero(before)
    from_end = rank_from_end(users[idx], time[idx], n_users)
    n_before = np.bincount(users[idx], minlength=n_users)[users[idx]]
    part[idx[(from_end == 0) & (n_before >= 2)]] = 1
    return part


def split_interactions(users: np.ndarray, time: np.ndarray | None, n_users: int, prepare: "PrepareConfig"
                       ) -> np.ndarray:
    """The split `prepare.split` names, as 0 train / 1 validation / 2 test per interaction."""
    if prepare.split == "random":
        return split_per_user(users, n_users, prepare)
    if time is None:
        raise DataError(f'prepare.split = "{prepare.split}" needs a timestamp on every interaction, and this data '
                        "has none (or some are missing).")
    if prepare.split == "leave-last-out":
        return split_last_per_user(users, time, n_users, prepare)
    cutoff = pd.Timestamp(prepare.cutoff)
    cutoff = cutoff.tz_convert(None) if cutoff.tzinfo is not None else cutoff
    return split_by_time(users, time, n_users, (cutoff - pd.Timestamp(0)) / pd.Timedelta(seconds=1))


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


def prepare(implicit: pd.DataFrame, prepare: "PrepareConfig", items: pd.DataFrame | None = None,
            catalogue: bool = False) -> Dataset:
    """Id maps, split and fingerprint of the implicit interactions (and the item attribute table,
    aligned to the item ids, where the source has one). With `catalogue`, the table's items that
    have no interaction are items of the dataset too (known by their attributes alone)."""
    user_codes, user_ids = pd.factorize(implicit["user_id"], sort=True)
    if catalogue and items is not None:
        every = pd.concat([implicit["item_id"].astype(str), items["item_id"].astype(str)])
        item_ids = pd.Index(every.unique()).sort_values()
        item_codes = item_ids.get_indexer(implicit["item_id"].astype(str))
    else:
        item_codes, item_ids = pd.factorize(implicit["item_id"], sort=True)
    time = _seconds(implicit["timestamp"])
    part = split_interactions(user_codes, time, len(user_ids), prepare)
    events = Events.build(user_codes, item_codes, time, part)
    item_ids = np.asarray(item_ids, dtype=object)
    digest = fingerprint(implicit, prepare)
    if catalogue and items is not None:  # the same interactions over another catalogue are another dataset
        digest = hashlib.sha256((digest + "\n".join(item_ids.astype(str))).encode()).hexdigest()[:16]
    data = Dataset(user_ids=np.asarray(user_ids, dtype=object), item_ids=item_ids, events=events,
                   fingerprint=digest, items=_aligned(items, item_ids),
                   exclude_seen=prepare.exclude_seen)
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
    times = [_seconds(train["timestamp"]) if "timestamp" in train else None,
             _seconds(test["timestamp"][keep]) if "timestamp" in test else None]
    if prepare_cfg.split == "random":
        # The validation carve-out, drawn as split_per_user draws a test split (it marks it 2).
        part = split_per_user(tr_users, len(user_ids), prepare_cfg, test_fraction=prepare_cfg.validation_fraction,
                              validation_fraction=0.0)
    else:  # each user's last training interaction by time, as the test split holds the one after
        if times[0] is None:
            raise DataError(f'prepare.split = "{prepare_cfg.split}" needs a timestamp on every training interaction.')
        from_end = rank_from_end(tr_users, times[0], len(user_ids))
        part = np.where((from_end == 0) & (np.bincount(tr_users, minlength=len(user_ids))[tr_users] >= 2), 2, 0)
    split = np.concatenate([np.where(part == 2, 1, 0), np.full(int(keep.sum()), 2)])
    time = np.concatenate(times) if all(t is not None for t in times) else None
    events = Events.build(np.concatenate([tr_users, te_users[keep]]), np.concatenate([item_codes, te_items[keep]]),
                          time, split)
    data = Dataset(user_ids=np.asarray(user_ids, dtype=object), item_ids=np.asarray(item_ids, dtype=object),
                   events=events, fingerprint=fingerprint(pd.concat([train, test]), prepare_cfg),
                   exclude_seen=prepare_cfg.exclude_seen)
    data.stats = _stats(data) | {"test_dropped_unknown_items": int((~keep).sum())}
    return data
