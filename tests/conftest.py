"""Shared fixtures: a real Prefect engine (session-scoped test harness), an isolated GENREC_HOME
per test (so MLflow's SQLite registry is fresh), small generated data sets, and the shared data
folder (tests that need it skip with a printed reason where it is absent)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# pytest-xdist's workers share the machine's cores: each takes its share for torch's and BLAS's
# thread pools (set before numpy and torch load, and passed on to the subprocesses it starts).
# Two workers with a pool of every core each keep waiting on each other's threads: a small seqgan
# fit took 162 s in the suite and 17 s alone.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, _share)

import numpy as np
import pandas as pd
import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="genrec-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_HOME / "prefect"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def prefect_harness():
    # Import the flows (and with them Prefect's logging set-up) here, outside any CliRunner, so
    # that Prefect's console handler is not bound to a CliRunner stream that closes afterwards.
    import flows.training  # noqa: F401
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def genrec_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("GENREC_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or a skip with the reason printed."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (MovieLens/Ciao are not redistributed; CI provides ../shared/data)")
    return path


def clustered_interactions(
    n_clusters: int = 4, users_per_cluster: int = 30, items_per_cluster: int = 25, density: float = 0.6, seed: int = 0
) -> pd.DataFrame:
    """Users in clusters who each consume a random share of their cluster's items.

    A model that learns co-occurrence recommends the missing items of the user's own cluster;
    popularity cannot tell clusters apart, so it is a clear, known floor.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_clusters):
        for u in range(users_per_cluster):
            user = f"u{c}-{u}"
            items = np.flatnonzero(rng.random(items_per_cluster) < density)
            for i in items:
                rows.append((user, f"i{c}-{i}", 1.0, 1_600_000_000 + len(rows)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture
def clustered_csv(tmp_path) -> Path:
    path = tmp_path / "clustered.csv"
    clustered_interactions().to_csv(path, index=False)
    return path


@contextlib.contextmanager
def home_env(home: Path):
    """GENREC_HOME at `home` for a module-scoped fixture (the tracking URI MLflow exported dropped)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GENREC_HOME", str(home))
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(home: Path, log: Path, *args: str):
    """`genrec serve` on a free port for `home`'s champion, once it answers /ping; its base URL.
    Its stderr goes to `log`; it is stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "genrec"), "serve", "--port", str(port), *args],
                            env=dict(os.environ, GENREC_HOME=str(home)), stdout=subprocess.DEVNULL,
                            stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/ping", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {log.read_text()}")
                if time.time() > deadline:
                    pytest.fail("server did not answer /ping within 120 s")
                time.sleep(1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
