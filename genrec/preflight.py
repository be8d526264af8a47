"""Checks a command makes before it starts work, so that a bad state folder, a full disk or a server
that does not answer is one sentence within seconds, not minutes of retries and a traceback."""

from __future__ import annotations

import errno
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from genrec.errors import GenrecError, UsageError
from genrec.paths import genrec_home, redacted

PROBE_SECONDS = 5.0
PROBE_BYTES = 1 << 20
"""What the write check writes: with less free than this not even MLflow's empty store (about 1 MB) fits,
and a check that writes nothing passes on a full disk."""
USES_PREFECT = {"run", "batch", "deploy", "approve", "reject"}
USES_REGISTRY = {"run", "validate", "models", "promote", "rollback", "history", "recommend", "serve", "batch"}
FULL = {errno.ENOSPC, errno.EDQUOT}


class Unreachable(GenrecError):
    """A server genrec is pointed at does not answer."""


class DiskFull(GenrecError):
    """A state folder's file system has no room left (exit 1: the path is right, the disk is not)."""


def check(command: str | None) -> None:
    """The checks for `command` (a `genrec` subcommand's name)."""
    if command is None:
        return
    writable_folder(genrec_home(), "GENREC_HOME")
    if command in USES_PREFECT:
        writable_folder(Path(os.environ.get("PREFECT_HOME", genrec_home() / "prefect")).expanduser(), "PREFECT_HOME")
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if command in USES_REGISTRY and uri.startswith(("http://", "https://")):
        answers(uri.rstrip("/") + "/health", "the MLflow tracking server (MLFLOW_TRACKING_URI)")
    if command in USES_PREFECT:  # last: reading Prefect's settings imports Prefect (seconds)
        url, source = prefect_api_url()
        if url:
            answers(url.rstrip("/") + "/health", f"the Prefect API ({source})")


def writable_folder(path: Path, name: str) -> None:
    """UsageError unless `path` is (or can be made) a folder genrec can write to; DiskFull where it is
    one but its file system has less than PROBE_BYTES free."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{name}={path} is not a folder genrec can write to: it is a file.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".genrec-write-check-") as probe:
            probe.write(bytes(PROBE_BYTES))
            probe.flush()
    except OSError as exc:
        if exc.errno in FULL:
            why = "" if exc.errno == errno.ENOSPC else f" ({exc.strerror})"
            raise DiskFull(f"No space left on the device of {name}={path}{why}: free some and run again.") from None
        raise UsageError(f"{name}={path} is not a folder genrec can write to: {exc.strerror or exc}.") from None


def prefect_api_url() -> tuple[str | None, str]:
    """The Prefect API a flow will talk to (None: a temporary server of its own), and where that is set.
    The environment is read first, for speed; else Prefect's own settings (its profile, prefect.toml)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"], "PREFECT_API_URL"
    try:
        from prefect.settings import get_current_settings

        url = get_current_settings().api.url
    except Exception:  # noqa: BLE001 - settings Prefect cannot read are Prefect's to report
        return None, ""
    return url, "PREFECT_API_URL in Prefect's settings"


def answers(url: str, what: str) -> None:
    """Unreachable unless `url` answers within PROBE_SECONDS (any HTTP status, or a TLS handshake the
    client later has to trust, counts as an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return
        raise Unreachable(f"{what} at {redacted(url.rsplit('/health', 1)[0])} does not answer ({reason}).") from None
