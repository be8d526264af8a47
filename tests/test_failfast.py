"""Fail fast, with real `genrec` processes: a tracking server or Prefect API that does not answer, a
state folder that is not a writable folder, a full disk: each is exit 1 (2 for a bad path) within 15 s,
one sentence that names what and where, and no traceback. A disk that fills up mid-run is the same
sentence, and once there is room again the next start works and closes the failed run. Two first runs
at once on a fresh GENREC_HOME both succeed."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port
from genrec.crashpoints import ENV as CRASH_AT

GENREC = Path(sys.executable).parent / "genrec"
FAST = 15.0
"""What the issue allows a fail-fast check (seconds, from start to exit)."""


def _train(data: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(data), "--format", "csv", "--config", "tiny", *extra]


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _env(home: Path, prefect_home: Path | None = None, **extra: str) -> dict[str, str]:
    """A fresh environment: this test's GENREC_HOME (and PREFECT_HOME), no server unless `extra` names one."""
    env = dict(os.environ, GENREC_HOME=str(home))
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_HOME", CRASH_AT):
        env.pop(name, None)  # MLflow exports the URI it was last given; the tests' conftest sets PREFECT_HOME
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
    env.update(extra)
    return env


def _start(logs: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, float]:
    """`genrec ARGS` in a process group of its own; its output goes to files (not pipes, which a server
    it leaves behind would hold open)."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "out").open("w") as out, (logs / "err").open("w") as err:
        proc = subprocess.Popen([str(GENREC), *args], env=env, stdout=out, stderr=err, start_new_session=True)
    return proc, time.monotonic()


def _finish(proc: subprocess.Popen, started: float, logs: Path, timeout: float = 400) -> Done:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    seconds = time.monotonic() - started
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what it left behind, or itself past the timeout
    proc.wait()
    return Done(proc.returncode, (logs / "out").read_text(), (logs / "err").read_text(), seconds)


def _genrec(logs: Path, env: dict[str, str], *args: str, timeout: float = 400) -> Done:
    proc, started = _start(logs, env, *args)
    return _finish(proc, started, logs, timeout)


def _sentence(done: Done, traceback_free: bool = True) -> str:
    """The one error sentence on stderr (asserting there is exactly one, and no traceback)."""
    if traceback_free:
        assert "Traceback" not in done.stderr, done.stderr[-4000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "unexpected error:"))]
    assert len(lines) == 1, done.stderr[-4000:]
    (line,) = lines
    assert line.startswith("error: "), line
    text = line.removeprefix("error: ")
    assert text.endswith(".") and ". " not in text, text
    return text


def _fails_fast(done: Done, code: int, *named: str) -> str:
    """The sentence of a command that stopped before it started work: all it wrote, and soon."""
    sentence = _sentence(done)
    assert done.stderr.strip() == f"error: {sentence}", done.stderr[-4000:]
    assert done.returncode == code, (done.returncode, done.stderr[-4000:])
    assert done.seconds < FAST, done.seconds
    for part in named:
        assert part in sentence, (part, sentence)
    return sentence


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (a hung server): only a timeout ends a request."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of its own (`tmpfs(name, options)`), unmounted afterwards; a skip, with the reason,
    where this machine does not let the tests mount one."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (chmod cannot make a folder read-only for root, and a "
                        "full disk needs a file system of its own)")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write a file into `folder` until its file system has no byte left; the file, to delete later."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(bytes(chunk))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


# --- servers that do not answer ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["models", "run"])
def test_tracking_server_not_listening(tmp_path, clustered_csv, command):
    url = f"http://127.0.0.1:{free_port()}"
    args = _train(clustered_csv) if command == "run" else ["models"]
    done = _genrec(tmp_path / "logs", _env(tmp_path / "home", MLFLOW_TRACKING_URI=url), *args)
    _fails_fast(done, 1, "MLflow tracking server", "MLFLOW_TRACKING_URI", url)


@pytest.mark.parametrize("command", ["models", "run"])
def test_tracking_server_that_hangs(tmp_path, clustered_csv, silent_server, command):
    args = _train(clustered_csv) if command == "run" else ["models"]
    done = _genrec(tmp_path / "logs", _env(tmp_path / "home", MLFLOW_TRACKING_URI=silent_server), *args)
    _fails_fast(done, 1, "MLflow tracking server", silent_server)


def test_prefect_api_not_listening(tmp_path, clustered_csv):
    url = f"http://127.0.0.1:{free_port()}/api"
    done = _genrec(tmp_path / "logs", _env(tmp_path / "home", PREFECT_API_URL=url), *_train(clustered_csv))
    _fails_fast(done, 1, "Prefect API", "PREFECT_API_URL", url)


def test_prefect_api_of_the_profile_that_hangs(tmp_path, clustered_csv, silent_server):
    """Set with `prefect config set` (in PREFECT_HOME's profiles.toml) rather than the environment."""
    prefect_home = tmp_path / "prefect"
    prefect_home.mkdir()
    url = f"{silent_server}/api"
    (prefect_home / "profiles.toml").write_text(f'active = "remote"\n\n[profiles.remote]\nPREFECT_API_URL = "{url}"\n')
    done = _genrec(tmp_path / "logs", _env(tmp_path / "home", prefect_home), *_train(clustered_csv))
    _fails_fast(done, 1, "Prefect API", url)


# --- state folders that are not writable folders ------------------------------------------------------


def test_genrec_home_under_a_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    home = tmp_path / "file" / "home"
    done = _genrec(tmp_path / "logs", _env(home), "models")
    _fails_fast(done, 2, f"GENREC_HOME={home}")


def test_genrec_home_is_a_file(tmp_path):
    home = tmp_path / "file"
    home.write_text("not a folder")
    done = _genrec(tmp_path / "logs", _env(home), "models")
    _fails_fast(done, 2, f"GENREC_HOME={home}", "it is a file")


@pytest.mark.parametrize("below", [False, True], ids=["itself", "below"])
def test_read_only_genrec_home(tmp_path, tmpfs, below):
    ro = tmpfs("ro", "ro,size=1m")
    home = ro / "home" if below else ro
    done = _genrec(tmp_path / "logs", _env(home), "models")
    _fails_fast(done, 2, f"GENREC_HOME={home}", "Read-only file system")


def test_read_only_prefect_home(tmp_path, tmpfs, clustered_csv):
    ro = tmpfs("ro", "ro,size=1m")
    done = _genrec(tmp_path / "logs", _env(tmp_path / "home", ro), *_train(clustered_csv))
    _fails_fast(done, 2, f"PREFECT_HOME={ro}", "Read-only file system")


# --- a full disk ------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["GENREC_HOME", "PREFECT_HOME"])
def test_full_disk_at_the_start(tmp_path, tmpfs, clustered_csv, folder):
    disk = tmpfs("disk", "size=8m")
    _fill(disk)
    env = _env(disk / "home", None) if folder == "GENREC_HOME" else _env(tmp_path / "home", disk / "prefect")
    commands = [_train(clustered_csv)] + ([["models"]] if folder == "GENREC_HOME" else [])
    for i, args in enumerate(commands):
        done = _genrec(tmp_path / f"logs{i}", env, *args)
        _fails_fast(done, 1, "No space left", folder)


def _runs(home: Path) -> dict:
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("genrec")
    return {} if experiment is None else {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}


def test_disk_fills_up_mid_run(tmp_path, tmpfs, clustered_csv):
    """GENREC_HOME (and so PREFECT_HOME, its default place) on a disk that fills up once the run has
    started training (its checkpoint folder exists): past validation, Data Docs and the first
    registry writes."""
    when = "checkpoints"
    disk = tmpfs("disk", "size=64m")
    home = disk / "home"
    env = _env(home)
    proc, started = _start(tmp_path / "logs", env, *_train(clustered_csv, "--json"))
    try:
        while not (home / when).is_dir() or not any((home / when).iterdir()):
            assert proc.poll() is None, (tmp_path / "logs" / "err").read_text()[-4000:]
            assert time.monotonic() - started < 300
            time.sleep(0.05)
        filler = _fill(disk)
    finally:
        done = _finish(proc, started, tmp_path / "logs")
    sentence = _sentence(done, traceback_free=False)  # checked last, so that a traceback hides nothing else
    assert done.returncode == 1, done.stderr[-4000:]
    assert "No space left" in sentence and str(home) in sentence, sentence

    filler.unlink()
    models = _genrec(tmp_path / "models", env, "models")
    assert models.returncode == 0, models.stderr[-4000:]
    assert "Traceback" not in models.stderr, models.stderr[-4000:]
    failed = set(_runs(home))
    rerun = _genrec(tmp_path / "rerun", env, *_train(clustered_csv, "--json", "--set", "model.name=pop"))
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    runs = _runs(home)
    assert failed <= set(runs)
    assert [r.info.run_id for r in runs.values() if r.info.status == "RUNNING"] == []
    assert "Traceback" not in done.stderr, done.stderr[-4000:]


# --- concurrent first runs --------------------------------------------------------------------------


def test_two_first_runs_at_once_on_a_fresh_home(tmp_path, clustered_csv):
    """Same GENREC_HOME, same (default) PREFECT_HOME: each initialises what it finds missing, and only
    one of them does."""
    env = _env(tmp_path / "home")
    # Popularity: what races is setting up the stores, not training.
    procs = [_start(tmp_path / f"logs{i}", env, *_train(clustered_csv, "--json", "--set", "model.name=pop"))
             for i in range(2)]
    done = [_finish(proc, started, tmp_path / f"logs{i}") for i, (proc, started) in enumerate(procs)]
    for d in done:
        assert d.returncode == 0, d.stderr[-4000:]
        assert "Traceback" not in d.stderr, d.stderr[-4000:]
    runs = _runs(tmp_path / "home")
    assert len(runs) == 2 and {r.info.status for r in runs.values()} == {"FINISHED"}
