"""The team's servers on one machine (`genrec stack up` / `down`): a Prefect server, a process work
pool with its worker, and an MLflow tracking server on PostgreSQL (SQLite where PostgreSQL is not
installed) that proxies the artifacts, all on 127.0.0.1.

Each server is the real program started as a process of its own session, so it outlives the command
that started it; `stack.json` under the stack's folder records what runs, where its log is and the
environment that points genrec at it. Data (the databases, the artifacts) stays in that folder
between `down` and the next `up`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genrec.errors import GenrecError, UsageError
from genrec.lifeline import process_alive

STATE_FILE = "stack.json"
POOL = "genrec"
"""The work pool `deploy/prefect.yaml` names."""


@dataclass(frozen=True)
class Ports:
    prefect: int = 4200
    mlflow: int = 5000
    postgres: int = 5433


class StackError(GenrecError):
    exit_code = 1


def _bin(name: str) -> str:
    """A console script of this environment (prefect, mlflow), found beside its Python."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), or None where it is not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GENREC_LIFELINE", "PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env.update(extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _wait(what: str, ready: Callable[[], bool], log: Path, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
    state = f"exited with {proc.returncode}" if proc is not None and proc.poll() is not None else f"not ready after {timeout:.0f} s"
    raise StackError(f"{what} {state}; its log is {log}" + (": " + " | ".join(tail) if tail else "."))


def _http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    return ready


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Stack:
    """The servers under `root`: `up()` starts what is not running, `down()` stops all of it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.state_path = self.root / STATE_FILE

    # --- state ---

    def state(self) -> dict:
        if not self.state_path.exists():
            return {}
        return json.loads(self.state_path.read_text())

    def _save(self, state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

    def env(self) -> dict[str, str]:
        return self.state().get("env", {})

    def running(self) -> dict[str, bool]:
        return {name: process_alive(s["pid"]) for name, s in self.state().get("services", {}).items()}

    # --- up ---

    def up(self, ports: Ports = Ports(), sqlite: bool = False, say: Callable[[str], None] = lambda _: None) -> dict:
        if self.state().get("services") and any(self.running().values()):
            raise UsageError(f"A stack already runs from {self.root}: `genrec stack down` first "
                             "(or `genrec stack status` for where it listens).")
        for port in (ports.prefect, ports.mlflow, *([] if sqlite else [ports.postgres])):
            if not _port_free(port):
                raise UsageError(f"Port {port} on 127.0.0.1 is in use: stop what listens there or pick another "
                                 "with --prefect-port / --mlflow-port / --postgres-port.")
        self.root.mkdir(parents=True, exist_ok=True)
        state: dict = {"root": str(self.root), "services": {}, "env": {}}
        started: list[str] = []
        try:
            backend = None if sqlite else self._postgres(ports.postgres, state, say)
            if backend is None:
                backend = f"sqlite:///{self.root / 'mlflow.db'}"
                state["backend"] = "sqlite"
                say("MLflow's store: SQLite at " + str(self.root / "mlflow.db") +
                    ("" if sqlite else " (PostgreSQL is not installed here)"))
            self._save(state)
            self._mlflow(backend, ports.mlflow, state, say)
            self._save(state)
            self._prefect(ports.prefect, state, say)
            self._save(state)
            self._worker(state, say)
            self._save(state)
        except BaseException:
            started = list(state["services"])
            self._save(state)
            if started:
                self.down()
            raise
        return state["env"]

    def _service(self, state: dict, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=_child_env(env), cwd=self.root, start_new_session=True, close_fds=True)
        state["services"][name] = {"pid": proc.pid, "log": str(log), "command": cmd}
        return proc

    def _postgres(self, port: int, state: dict, say: Callable[[str], None]) -> str | None:
        bindir = postgres_bin()
        if bindir is None:
            return None
        data = self.root / "pgdata"
        log = self.root / "postgres.log"
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(data, "postgres", "postgres")
                if subprocess.run(_as_postgres(["test", "-w", str(data)])).returncode != 0:
                    raise UsageError(f"PostgreSQL runs as the user postgres, which cannot reach {data}: give a --dir "
                                     "whose every parent folder others may enter, or --sqlite.")
            _run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "genrec", "--auth=trust",
                               "--encoding=UTF8"]), "initdb", log)
        if os.geteuid() == 0:
            log.touch()
            shutil.chown(log, "postgres", "postgres")
        _run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start",
                           "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1"]), "PostgreSQL", log)
        state["services"]["postgres"] = {"pid": _postmaster_pid(data), "log": str(log), "data": str(data),
                                         "bin": str(bindir)}
        state["backend"] = "postgresql"
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="genrec", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'mlflow'")
            if cur.fetchone() is None:
                cur.execute("CREATE DATABASE mlflow")
        conn.close()
        say(f"PostgreSQL on 127.0.0.1:{port} (data {data})")
        return f"postgresql+psycopg2://genrec@127.0.0.1:{port}/mlflow"

    def _mlflow(self, backend: str, port: int, state: dict, say: Callable[[str], None]) -> None:
        artifacts = self.root / "mlflow-artifacts"
        artifacts.mkdir(exist_ok=True)
        proc = self._service(state, "mlflow", [
            _bin("mlflow"), "server", "--backend-store-uri", backend, "--serve-artifacts",
            "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ], {})
        url = f"http://127.0.0.1:{port}"
        _wait("The MLflow server", _http_ok(f"{url}/health"), self.root / "mlflow.log", 120, proc)
        state["env"]["MLFLOW_TRACKING_URI"] = url
        say(f"MLflow tracking server on {url} (store {backend.split('://')[0]}, artifacts proxied to {artifacts})")

    def _prefect(self, port: int, state: dict, say: Callable[[str], None]) -> None:
        env = {"PREFECT_HOME": str(self.root / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        proc = self._service(state, "prefect", [_bin("prefect"), "server", "start", "--host", "127.0.0.1",
                                                "--port", str(port)], env)
        api = f"http://127.0.0.1:{port}/api"
        _wait("The Prefect server", _http_ok(f"{api}/health"), self.root / "prefect.log", 180, proc)
        state["env"]["PREFECT_API_URL"] = api
        say(f"Prefect server on {api} (UI http://127.0.0.1:{port})")

    def _worker(self, state: dict, say: Callable[[str], None]) -> None:
        env = {**state["env"], "PREFECT_HOME": str(self.root / "prefect-worker"),
               "GENREC_HOME": str(self.root / "worker-home")}
        log = self.root / "worker.log"
        _run([_bin("prefect"), "work-pool", "create", POOL, "--type", "process", "--overwrite"], "work-pool create",
             log, env=_child_env(env))
        proc = self._service(state, "worker", [_bin("prefect"), "worker", "start", "--pool", POOL, "--type", "process",
                                               "--name", f"genrec-{os.uname().nodename}"], env)
        _wait("The Prefect worker", lambda: "started!" in log.read_text(errors="replace"), log, 90, proc)
        say(f"Prefect worker on work pool {POOL!r} (process; GENREC_HOME {env['GENREC_HOME']})")

    # --- down ---

    def down(self) -> list[str]:
        """Stop every service (the worker first, PostgreSQL last); returns their names."""
        state = self.state()
        services = state.get("services", {})
        stopped = []
        for name in ("worker", "prefect", "mlflow"):
            if name in services:
                _stop_group(services[name]["pid"])
                stopped.append(name)
        if "postgres" in services:
            pg = services["postgres"]
            subprocess.run(_as_postgres([str(Path(pg["bin"]) / "pg_ctl"), "-D", pg["data"], "-m", "fast", "-w",
                                         "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_child_env({}))
            stopped.append("postgres")
        if self.state_path.exists():
            state["services"] = {}
            self._save(state)
        return stopped


def _run(cmd: list[str], what: str, log: Path, env: dict[str, str] | None = None) -> None:
    """Run a set-up step; whatever it leaves running (PostgreSQL) must not carry genrec's lifeline."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=env or _child_env({}))
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise StackError(f"{what} failed (exit {done.returncode}): {' | '.join(message)} (see {log})")


def _postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split()[0])


def _stop_group(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the service's whole session (a server's workers too), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.2)
        if not process_alive(pid):
            break
    try:
        os.killpg(pid, signal.SIGKILL)  # what the leader left of its session
    except (ProcessLookupError, PermissionError):
        pass
