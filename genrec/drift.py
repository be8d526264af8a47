"""Drift of new prepared data against the champion's training data.

A `DataProfile` summarises prepared interactions: sizes, the user and item ids, interactions per
item, and the rating histogram. It is logged with every candidate model, so the champion's profile
is at hand when the next run's data arrives. `compare` measures size change, the share of new users
and items, the shift of the item popularity distribution (Jensen-Shannon divergence, base 2, in
[0, 1]) and of the rating distribution (total variation distance, in [0, 1]). Thresholds, and
whether crossing one warns or rejects, come from the config; the checks run as a Great
Expectations suite (`expectations/drift.json`), so they appear in the Data Docs like any other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

METRICS = ("size_change", "new_users_share", "new_items_share", "popularity_shift", "rating_shift")


@dataclass
class DataProfile:
    n_users: int
    n_items: int
    n_interactions: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_counts: np.ndarray
    rating_histogram: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, implicit: pd.DataFrame) -> "DataProfile":
        counts = implicit["item_id"].value_counts().sort_index()
        ratings = implicit["rating"].dropna()
        hist = {f"{k:g}": int(v) for k, v in ratings.round(1).value_counts().sort_index().items()}
        return cls(
            n_users=int(implicit["user_id"].nunique()),
            n_items=len(counts),
            n_interactions=len(implicit),
            user_ids=np.sort(np.asarray(implicit["user_id"].unique(), dtype=str)),
            item_ids=np.asarray(counts.index, dtype=str),
            item_counts=counts.to_numpy().astype(np.int64),
            rating_histogram=hist,
        )

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / "ids.npz", user_ids=self.user_ids, item_ids=self.item_ids,
                            item_counts=self.item_counts)
        (directory / "profile.json").write_text(json.dumps({
            "n_users": self.n_users, "n_items": self.n_items, "n_interactions": self.n_interactions,
            "rating_histogram": self.rating_histogram}, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> "DataProfile":
        meta = json.loads((directory / "profile.json").read_text())
        with np.load(directory / "ids.npz", allow_pickle=False) as arrays:
            return cls(user_ids=arrays["user_ids"], item_ids=arrays["item_ids"], item_counts=arrays["item_counts"],
                       **meta)


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / b[mask])).sum())

    return (kl(p, m) + kl(q, m)) / 2


def compare(reference: DataProfile, new: DataProfile) -> dict[str, float | None]:
    """The drift metrics of `new` against `reference` (None where a metric does not apply)."""
    items = np.union1d(reference.item_ids, new.item_ids)
    p = np.zeros(len(items))
    q = np.zeros(len(items))
    p[np.searchsorted(items, reference.item_ids)] = reference.item_counts
    q[np.searchsorted(items, new.item_ids)] = new.item_counts
    rating_shift = None
    if reference.rating_histogram and new.rating_histogram:
        keys = sorted(set(reference.rating_histogram) | set(new.rating_histogram), key=float)
        a = np.array([reference.rating_histogram.get(k, 0) for k in keys], dtype=float)
        b = np.array([new.rating_histogram.get(k, 0) for k in keys], dtype=float)
        rating_shift = float(np.abs(a / a.sum() - b / b.sum()).sum() / 2)
    return {
        "size_change": abs(new.n_interactions / max(reference.n_interactions, 1) - 1.0),
        "new_users_share": float(1 - np.isin(new.user_ids, reference.user_ids).mean()) if new.n_users else 0.0,
        "new_items_share": float(1 - np.isin(new.item_ids, reference.item_ids).mean()) if new.n_items else 0.0,
        "popularity_shift": _js_divergence(p, q),
        "rating_shift": rating_shift,
    }


def drift_frame(metrics: dict[str, float | None]) -> pd.DataFrame:
    """One row of drift metrics, the shape the drift suite validates (absent metrics left out)."""
    return pd.DataFrame([{k: v for k, v in metrics.items() if v is not None}])


@dataclass(frozen=True)
class DriftCheck:
    metric: str
    value: float | None
    threshold: float
    action: str
    """`warn` or `reject`, from the config."""
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check(reference: DataProfile, new: DataProfile, cfg, validator) -> tuple[list[DriftCheck], Any]:
    """Run the drift suite on `new` against `reference` with the thresholds and actions of `cfg`
    (a `DriftConfig`); returns the checks and the validation report."""
    metrics = compare(reference, new)
    report = validator.validate(drift_frame(metrics), "drift", {f"max_{m}": getattr(cfg, f"max_{m}") for m in METRICS})
    checks = [
        DriftCheck(metric=o.column, value=metrics[o.column], threshold=getattr(cfg, f"max_{o.column}"),
                   action="reject" if o.column in cfg.reject else "warn", passed=o.success)
        for o in report.outcomes
    ]
    return checks, report


def rejection(checks: list[DriftCheck]) -> str | None:
    """The sentence that rejects the data, or None when no rejecting check failed."""
    failed = [c for c in checks if not c.passed and c.action == "reject"]
    if not failed:
        return None
    return "; ".join(f"{c.metric} is {c.value:.3f}, above {c.threshold}" for c in failed)
