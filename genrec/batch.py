"""Batch scoring: top-K recommendations for every known user, written to Parquet.

The file's schema metadata names the model and version that produced it, so a consumer can tell
which champion a table came from.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from genrec.serving import ServingModel


def recommend_all(served: ServingModel, k: int, chunk: int = 4096):
    """Frames of SPEC's response rows (user_id, items, scores, names, fallback) for every known user,
    in chunks."""
    users = served.user_ids
    for start in range(0, len(users), chunk):
        ids = users[start : start + chunk]
        yield served.predict(pd.DataFrame({"user_id": ids, "history": [[] for _ in ids]}), k=k)


PROGRESS_SECONDS = 60.0
"""`write_recommendations` reports its progress at least this often (a million users take minutes)."""


def write_recommendations(served: ServingModel, path: Path, k: int, metadata: dict[str, str],
                          progress: Callable[[int, int], None] | None = None, chunk: int = 4096) -> dict[str, Any]:
    """Write every user's top-k to `path` (Parquet, one row per user); return counts and timing.
    Users are scored `chunk` at a time; `progress(users written, users in all)` is called after a
    chunk once PROGRESS_SECONDS have passed since the start or its last call."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [("user_id", pa.string()), ("items", pa.list_(pa.string())), ("scores", pa.list_(pa.float64())),
         ("names", pa.list_(pa.string())), ("fallback", pa.bool_())],
        metadata={f"genrec.{key}": str(value) for key, value in metadata.items()} | {"genrec.k": str(k)},
    )
    start = reported = time.perf_counter()
    users = 0
    with pq.ParquetWriter(path, schema) as writer:
        for frame in recommend_all(served, k, chunk):
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            users += len(frame)
            if progress is not None and time.perf_counter() - reported >= PROGRESS_SECONDS:
                progress(users, len(served.user_ids))
                reported = time.perf_counter()
    seconds = time.perf_counter() - start
    return {"path": str(path), "users": users, "k": k, "seconds": round(seconds, 3),
            "users_per_second": round(users / seconds, 1) if seconds else float(np.inf)}
