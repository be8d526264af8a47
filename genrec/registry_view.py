"""The registry read without MLflow's Python client, for the commands that only read it (`genrec
models`, `genrec history`): importing the client alone takes about two seconds on two cores.

With a tracking server, its REST API (MLflow's public one); with the local SQLite store, its tables,
read-only. Whatever needs more than a read (a move of `champion` that a crash cut short, a promotion
whose run may have died) or a store this cannot read (another database, a schema it does not know,
credentials beyond a user and password or a token) gives None, and the caller takes the full path
through MLflow's client (genrec/registry.py), which also repairs. The entries built here are the
ones that path builds (`version_entry`), so both print the same.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "genrec.history."
INTENT = "genrec.intent"
"""A move of `champion` under way: written before the alias moves, deleted once its history entry is."""


@dataclass
class Snapshot:
    """A registered model as stored: its tags, its aliases and its versions (none: no such model)."""

    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)
    """Each {"version", "run_id", "creation_timestamp" (ms), "tags"}."""


def json_tag(value: str | None, default: Any) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def version_entry(version: str, run_id: str | None, created_ms: int, tags: dict[str, str], aliases: list[str],
                  promotion: Any) -> dict[str, Any]:
    """One version as `genrec models` shows it, with genrec's tags decoded."""
    return {
        "version": str(version),
        "aliases": sorted(aliases),
        "metrics": json_tag(tags.get("metrics"), {}),
        "decision": json_tag(tags.get("decision"), {}),
        "data_fingerprint": tags.get("data_fingerprint"),
        "model_family": tags.get("model_family"),
        "flow_run_id": tags.get("flow_run_id"),
        "approval": json_tag(tags.get("approval"), None),
        "promotion": promotion,
        "run_id": run_id,
        "created": datetime.fromtimestamp(created_ms / 1000, timezone.utc).isoformat(timespec="seconds"),
    }


def pending(promotion: Any, aliases: list[str]) -> bool:
    """Whether a recorded promotion may have been cut short (its run must be looked at)."""
    return isinstance(promotion, dict) and promotion.get("status") == "pending" and CHAMPION not in aliases


def list_versions(model_name: str) -> list[dict[str, Any]] | None:
    """The versions, newest first, as `registry.list_versions` gives them; None: take that path."""
    snap = snapshot(model_name)
    if snap is None:
        return None
    by_version: dict[str, list[str]] = {}
    for alias, version in snap.aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    out = []
    for v in sorted(snap.versions, key=lambda v: int(v["version"]), reverse=True):
        aliases = by_version.get(str(v["version"]), [])
        promotion = json_tag(v["tags"].get("promotion"), None)
        if pending(promotion, aliases):
            return None
        out.append(version_entry(v["version"], v["run_id"], v["creation_timestamp"], v["tags"], aliases, promotion))
    return out


def history(model_name: str) -> list[dict[str, Any]] | None:
    """Every recorded move of `champion`, oldest first; None where a move needs repair first."""
    snap = snapshot(model_name)
    if snap is None or INTENT in snap.tags:
        return None
    return [json.loads(v) for k, v in sorted(snap.tags.items()) if k.startswith(HISTORY_PREFIX)]


def snapshot(model_name: str) -> Snapshot | None:
    from genrec.paths import tracking_uri

    uri = tracking_uri()
    try:
        if uri.startswith("sqlite:///"):
            return _from_sqlite(Path(uri.removeprefix("sqlite:///")), model_name)
        if uri.startswith(("http://", "https://")):
            return _from_rest(uri.rstrip("/"), model_name)
    except (sqlite3.Error, OSError, ValueError, KeyError):
        return None  # the full path says what is wrong, in MLflow's words
    return None


# --- the local SQLite store ----------------------------------------------------------------------


def _from_sqlite(path: Path, model_name: str) -> Snapshot | None:
    if not path.is_file():
        return None  # a fresh home: the full path creates the store
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        where = "workspace = 'default' AND name = ?"
        if db.execute(f"SELECT 1 FROM registered_models WHERE {where}", (model_name,)).fetchone() is None:
            return Snapshot()
        tags = dict(db.execute(f"SELECT key, value FROM registered_model_tags WHERE {where}", (model_name,)))
        aliases = {a: str(v) for a, v in db.execute(
            f"SELECT alias, version FROM registered_model_aliases WHERE {where}", (model_name,))}
        version_tags: dict[str, dict[str, str]] = {}
        for version, key, value in db.execute(
                f"SELECT version, key, value FROM model_version_tags WHERE {where}", (model_name,)):
            version_tags.setdefault(str(version), {})[key] = value
        versions = [{"version": str(version), "run_id": run_id, "creation_timestamp": created,
                     "tags": version_tags.get(str(version), {})}
                    for version, run_id, created in db.execute(
                        f"SELECT version, run_id, creation_time FROM model_versions WHERE {where} "
                        "AND current_stage != 'Deleted_Internal'", (model_name,))]
    return Snapshot(tags, aliases, versions)


# --- a tracking server ---------------------------------------------------------------------------


def _headers() -> dict[str, str] | None:
    """MLflow's own credentials variables; None where others are set (the client handles those)."""
    if any(os.environ.get(k) for k in ("MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_TRACKING_SERVER_CERT_PATH",
                                       "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_INSECURE_TLS")):
        return None
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}


def _get(base: str, path: str, params: dict[str, Any], headers: dict[str, str]) -> dict | None:
    """One GET of MLflow's REST API; None for RESOURCE_DOES_NOT_EXIST."""
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        if exc.code == 404 and "RESOURCE_DOES_NOT_EXIST" in body:
            return None
        raise OSError(f"{url}: HTTP {exc.code}") from None


def _from_rest(base: str, model_name: str) -> Snapshot | None:
    headers = _headers()
    if headers is None:
        return None
    got = _get(base, "registered-models/get", {"name": model_name}, headers)
    if got is None:
        return Snapshot()
    model = got["registered_model"]
    tags = {t["key"]: t.get("value", "") for t in model.get("tags", [])}
    aliases = {a["alias"]: str(a["version"]) for a in model.get("aliases", [])}
    versions, token = [], None
    while True:
        params = {"filter": f"name='{model_name}'", "max_results": 1000, **({"page_token": token} if token else {})}
        page = _get(base, "model-versions/search", params, headers) or {}
        for v in page.get("model_versions", []):
            versions.append({"version": str(v["version"]), "run_id": v.get("run_id"),
                             "creation_timestamp": int(v["creation_timestamp"]),
                             "tags": {t["key"]: t.get("value", "") for t in v.get("tags", [])}})
        token = page.get("next_page_token")
        if not token:
            return Snapshot(tags, aliases, versions)
