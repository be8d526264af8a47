"""A fair test for the champion: never on interactions it trained on.

When the new data is scored to compare a candidate with the champion, the champion may have
trained on some of the new test split's interactions (the data grew, the split moved) and would win
by memory. So the comparison keeps only test interactions the champion cannot have seen: with
timestamps, those newer than the champion's training cutoff; without, those absent from its
training data (train and validation splits, as string id pairs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrec.dataset import TEST, Dataset


@dataclass
class TrainingReference:
    """What a model fitted on: its (user, item) pairs and, with timestamps, the latest time."""

    users: np.ndarray
    items: np.ndarray
    cutoff: str | None

    @classmethod
    def of(cls, data: Dataset) -> "TrainingReference":
        seen = data.known.tocoo()
        return cls(users=np.asarray(data.user_ids[seen.row], dtype=str),
                   items=np.asarray(data.item_ids[seen.col], dtype=str), cutoff=data.train_cutoff)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / "training_pairs.npz", users=self.users, items=self.items,
                            cutoff=np.array(self.cutoff or "", dtype=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> "TrainingReference | None":
        path = directory / "training_pairs.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as arrays:
            return cls(users=arrays["users"], items=arrays["items"], cutoff=str(arrays["cutoff"]) or None)


def fair_test(data: Dataset, reference: TrainingReference) -> tuple[Dataset, dict[str, Any]]:
    """`data` with its test split cut to what `reference`'s model cannot have trained on."""
    test = data.events.where(data.events.split == TEST)
    if reference.cutoff and test.has_time:
        cutoff = (pd.Timestamp(reference.cutoff) - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        keep = test.time > cutoff
        rule = f"test interactions newer than the champion's training cutoff {reference.cutoff}"
    else:
        seen = pd.MultiIndex.from_arrays([reference.users, reference.items])
        pairs = pd.MultiIndex.from_arrays([np.asarray(data.user_ids[test.user], dtype=str),
                                           np.asarray(data.item_ids[test.item], dtype=str)])
        keep = ~pairs.isin(seen)
        rule = "test interactions absent from the champion's training data"
    fair = data.keep_test(keep)
    info = {"rule": rule, "interactions": int(fair.test.nnz), "removed": int(data.test.nnz - fair.test.nnz),
            "users": int((np.diff(fair.test.indptr) > 0).sum())}
    return fair, info
