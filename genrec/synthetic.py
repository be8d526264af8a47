"""Seeded synthetic shop logs with the structure of real ones, for benchmarks and tests at scale.

Items fall into taste clusters and have power-law popularity (Zipf over a random order); users have
power-law activity (a Pareto draw, at least `min_items` each) and one or two favourite clusters, from
which most of their purchases come, the rest following global popularity. Timestamps spread each
user's purchases over a year, in order. A user may buy an item more than once, as shoppers do.

Everything is drawn in vectorised NumPy (no loop per user), so that 20M rows take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SIZES = {
    "S": (20_000, 5_000, 500_000),
    "M": (200_000, 30_000, 4_000_000),
    "L": (1_000_000, 100_000, 20_000_000),
}
"""users, items, interactions of the scale benchmark's sizes (benchmarks/scale.py)."""

START = pd.Timestamp("2025-01-01").value // 10**9
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class ShopShape:
    users: int
    items: int
    interactions: int
    clusters: int = 0
    """Taste clusters; 0: one per 100 items (at least 10)."""
    in_cluster: float = 0.8
    """Share of a user's purchases drawn from their favourite clusters."""
    zipf: float = 1.0
    """Exponent of item popularity (rank^-zipf)."""
    activity: float = 1.5
    """Pareto shape of user activity (smaller: heavier tail)."""
    min_items: int = 3
    """Purchases of the least active user."""


def shop_log(shape: ShopShape, seed: int = 0) -> pd.DataFrame:
    """A log with columns `user_id, item_id` (strings such as `u12`, `i7`) and `timestamp` (Unix
    seconds), sorted by user and time; about `shape.interactions` rows."""
    rng = np.random.default_rng(seed)
    n_clusters = shape.clusters or max(10, shape.items // 100)
    popularity = rng.permutation(np.arange(1, shape.items + 1, dtype=np.float64) ** -shape.zipf)
    cluster_of = rng.integers(0, n_clusters, shape.items)
    # Items of each cluster, contiguous, with their cumulative popularity inside the cluster.
    by_cluster = np.argsort(cluster_of, kind="stable")
    bounds = np.searchsorted(cluster_of[by_cluster], np.arange(n_clusters + 1))
    cum = np.cumsum(popularity[by_cluster])
    base = np.concatenate([[0.0], cum])[bounds[:-1]]
    total = cum[bounds[1:] - 1] - base
    global_cum = np.cumsum(popularity) / popularity.sum()

    weights = rng.pareto(shape.activity, shape.users) + 1.0
    extra = max(shape.interactions - shape.min_items * shape.users, 0)
    counts = shape.min_items + np.floor(weights / weights.sum() * extra).astype(np.int64)
    counts = np.minimum(counts, max(shape.items // 2, shape.min_items))
    user = np.repeat(np.arange(shape.users), counts)
    n = len(user)

    favourite = rng.integers(0, n_clusters, (shape.users, 2))
    second = rng.random(n) < 0.3  # a third of in-cluster purchases from the second favourite
    cluster = favourite[user, second.astype(np.int64)]
    from_cluster = rng.random(n) < shape.in_cluster
    draw = rng.random(n)
    item = np.empty(n, dtype=np.int64)
    c = cluster[from_cluster]
    target = base[c] + draw[from_cluster] * total[c]
    item[from_cluster] = by_cluster[np.minimum(np.searchsorted(cum, target, side="right"), shape.items - 1)]
    item[~from_cluster] = np.minimum(np.searchsorted(global_cum, draw[~from_cluster], side="right"), shape.items - 1)

    # Each user's purchases at sorted random times within the year after START.
    first = START + rng.integers(0, YEAR // 2, shape.users)
    time = first[user] + rng.integers(0, YEAR // 2, n)
    order = np.lexsort((time, user))
    return pd.DataFrame({
        "user_id": np.char.add("u", user[order].astype(str)),
        "item_id": np.char.add("i", item[order].astype(str)),
        "timestamp": time[order],
    })


def write_shop_log(shape: ShopShape, path, seed: int = 0) -> int:
    """Write `shop_log(shape, seed)` as CSV (header `user_id,item_id,timestamp`); returns its rows."""
    frame = shop_log(shape, seed)
    frame.to_csv(path, index=False)
    return len(frame)
