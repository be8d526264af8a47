"""Where genrec keeps its state: everything under `GENREC_HOME` (default `./.genrec`)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path


def genrec_home() -> Path:
    """The state folder, read from the environment at call time (never at import)."""
    return Path(os.environ.get("GENREC_HOME", ".genrec")).expanduser().resolve()


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` when set, else SQLite under `GENREC_HOME`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{genrec_home() / 'mlflow.db'}"


def redacted(uri: str) -> str:
    """`uri` with any password in it replaced by `***` (for printing)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def artifacts_dir() -> Path:
    return genrec_home() / "mlartifacts"


def run_stamp() -> str:
    """A sortable, unique-enough name for one run's folders."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def data_docs_dir(stamp: str) -> Path:
    """One Data Docs site per run, so that no run overwrites another's report."""
    return genrec_home() / "data_docs" / stamp


def datasets_dir(fingerprint: str) -> Path:
    return genrec_home() / "datasets" / fingerprint


def checkpoints_dir() -> Path:
    """One folder per training run: its checkpoint and what it trained on (`run.json`)."""
    return genrec_home() / "checkpoints"


def environment_defaults() -> dict[str, str]:
    """Environment a genrec process sets (unless already set) before Prefect is imported."""
    home = genrec_home()
    return {
        "GENREC_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "genrec",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # A tracking server that stops answering fails a command in seconds, not minutes of retries.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "GIT_PYTHON_REFRESH": "quiet",
    }
