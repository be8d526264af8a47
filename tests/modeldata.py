"""Small hand-made datasets with known answers, built straight into `Dataset`s."""

from __future__ import annotations

import numpy as np

from genrec.dataset import TEST, TRAIN, VALIDATION, Dataset, Events

BLOCK = 8


def dataset(rows: list[tuple[int, int, int]], n_users: int, n_items: int, times: list[float] | None = None) -> Dataset:
    """A dataset from (user, item, split) triples (split 0 train, 1 validation, 2 test)."""
    users, items, splits = (np.array(c, dtype=np.int64) for c in zip(*rows))
    events = Events.build(users, items, None if times is None else np.asarray(times, dtype=float), splits)
    return Dataset(user_ids=np.array([f"u{u}" for u in range(n_users)], dtype=object),
                   item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object), events=events,
                   fingerprint=f"test-{n_users}x{n_items}-{len(rows)}")


def checkerboard(n_blocks: int = 3, validation: bool = False) -> Dataset:
    """Users and items in blocks; each user saw every item of their block but one (the diagonal),
    held out as test (or as validation with `validation`). The held-out item is the known top-1
    answer for a model that learns blocks."""
    n = n_blocks * BLOCK
    rows = []
    for u in range(n):
        block = u // BLOCK
        for i in range(block * BLOCK, (block + 1) * BLOCK):
            rows.append((u, i, (VALIDATION if validation else TEST) if i == u else TRAIN))
    return dataset(rows, n, n)


def star(n_blocks: int = 3, users_per_block: int = 16, items_per_block: int = 3) -> Dataset:
    """Users in blocks of items, each with every item of their block in order; two users in three
    then also take the `star` item (the last one), which the third holds out as test. For those,
    every signal a family can read points at the star: it is the most popular item they have not
    seen, it co-occurs with all of their items, and it comes after their last item."""
    n_users = n_blocks * users_per_block
    star_item = n_blocks * items_per_block
    rows, times = [], []
    for u in range(n_users):
        block = u // users_per_block
        for j, i in enumerate(range(block * items_per_block, (block + 1) * items_per_block)):
            rows.append((u, i, TRAIN))
            times.append(1_600_000_000 + 100 * u + j)
        rows.append((u, star_item, TEST if u % 3 == 0 else TRAIN))
        times.append(1_600_000_000 + 100 * u + items_per_block)
    return dataset(rows, n_users, star_item + 1, times)
