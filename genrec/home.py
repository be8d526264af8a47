"""A GENREC_HOME that can be moved or copied: MLflow's SQLite store and each logged model's `MLmodel`
record absolute paths, so genrec remembers where the home was (`home.json`) and, when the folder is
opened somewhere else, rewrites those paths to the new place and says so."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = "home.json"


@dataclass(frozen=True)
class Moved:
    old: str
    new: str
    db_values: int
    """Values rewritten in mlflow.db."""
    files: int
    """MLmodel files rewritten."""


def _recorded(home: Path) -> str | None:
    try:
        return json.loads((home / MARKER).read_text())["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record(home: Path) -> None:
    tmp = home / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"path": str(home)}))
    os.replace(tmp, home / MARKER)


def follow(home: Path, database: Path) -> Moved | None:
    """Rewrite the paths of a home that was at another place (call under the store's lock); record
    where it is now. None when it has not moved."""
    home = home.resolve()
    old = _recorded(home)
    if old is None or old == str(home):
        if old is None:
            _record(home)
        return None
    # Replace "<old>/" so that a sibling like "<old>2" is left alone.
    old_prefix, new_prefix = old.rstrip("/") + "/", str(home) + "/"
    db_values = rewrite_database(database, old_prefix, new_prefix) if database.is_file() else 0
    files = 0
    for mlmodel in home.rglob("MLmodel"):
        text = mlmodel.read_text()
        if old_prefix in text:
            mlmodel.write_text(text.replace(old_prefix, new_prefix))
            files += 1
    _record(home)
    moved = Moved(old, str(home), db_values, files)
    log.warning("GENREC_HOME was moved from %s to %s: rewrote %d paths in %s and %d MLmodel files.",
                old, home, db_values, database.name, files)
    return moved


def rewrite_database(database: Path, old_prefix: str, new_prefix: str) -> int:
    """Replace `old_prefix` by `new_prefix` in every text value of an SQLite database, in one transaction."""
    changed = 0
    with sqlite3.connect(database) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')
                       if any(t in (row[2] or "").upper() for t in ("CHAR", "TEXT", "CLOB", "STRING"))]
            for column in columns:
                cursor = conn.execute(f'UPDATE "{table}" SET "{column}" = REPLACE("{column}", ?, ?) '
                                      f'WHERE instr("{column}", ?) > 0', (old_prefix, new_prefix, old_prefix))
                changed += cursor.rowcount
    return changed
