"""The team's stack for real: `genrec stack up` starts a Prefect server, a process work pool with its
worker and an MLflow tracking server (on PostgreSQL where it is installed) with proxied artifacts;
the deployments of deploy/prefect.yaml go into the pool with Prefect's own `prefect deploy`; the
worker runs the training deployment; a second GENREC_HOME loads the champion through the tracking
server alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _genrec(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "genrec"), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def stack():
    from genrec.stack import postgres_bin

    root = Path(tempfile.mkdtemp(prefix="genrec-stack-", dir="/tmp"))
    os.chmod(root, 0o755)  # PostgreSQL runs as its own user where the tests run as root
    base = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    base["GENREC_HOME"] = str(root / "starter-home")
    ports = [free_port() for _ in range(3)]
    up = _genrec(["stack", "up", "--dir", str(root / "stack"), "--prefect-port", str(ports[0]),
                  "--mlflow-port", str(ports[1]), "--postgres-port", str(ports[2])], base, timeout=400)
    try:
        assert up.returncode == 0, up.stderr
        env = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        assert set(env) == {"PREFECT_API_URL", "MLFLOW_TRACKING_URI"}
        state = json.loads((root / "stack" / "stack.json").read_text())
        print(f"MLflow store: {state['backend']} (PostgreSQL {'found' if postgres_bin() else 'not installed'})")
        assert state["backend"] == ("postgresql" if postgres_bin() else "sqlite")
        yield {"root": root, "base": base, "env": env}
    finally:
        down = _genrec(["stack", "down", "--dir", str(root / "stack")], base, timeout=120)
        assert down.returncode == 0, down.stderr
        shutil.rmtree(root, ignore_errors=True)


def test_worker_trains_the_deployment_and_a_second_home_serves_its_champion(stack):
    env = {**stack["base"], **stack["env"]}
    deployed = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
                               "deploy/prefect.yaml"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    ran = subprocess.run([str(BIN / "prefect"), "deployment", "run", "genrec-train/daily-retrain", "--param",
                          "config=tiny", "--watch", "--watch-timeout", "500"],
                         env=env, capture_output=True, text=True, timeout=600)
    worker_log = (stack["root"] / "stack" / "worker.log").read_text()
    assert ran.returncode == 0 and "Completed" in ran.stdout, ran.stdout[-2000:] + worker_log[-3000:]
    assert "genrec-train" in worker_log and "Finished in state Completed()" in worker_log

    # Artifacts went through the server: none under the worker's home, all in the server's store.
    worker_home = stack["root"] / "stack" / "worker-home"
    assert not (worker_home / "mlartifacts").exists()
    assert len(list((stack["root"] / "stack" / "mlflow-artifacts").rglob("serving.safetensors"))) == 1

    second = {**env, "GENREC_HOME": str(stack["root"] / "second-home")}
    promoted = _genrec(["promote", "1", "--reason", "stack test"], second)  # whatever the gate said of it
    assert promoted.returncode == 0, promoted.stderr
    listed = _genrec(["models", "--json"], second)
    assert listed.returncode == 0, listed.stderr
    models = json.loads(listed.stdout)
    assert models["champion"] == "1" and models["versions"][0]["data_fingerprint"]
    compare = ("from genrec import registry, registry_view; v = registry_view.list_versions('genrec'); "
               "assert v is not None and v == registry.list_versions('genrec'), v; "
               "h = registry_view.history('genrec'); assert h == registry.history('genrec') and h, h")
    same = subprocess.run([sys.executable, "-c", compare], env=second, capture_output=True, text=True, timeout=120)
    assert same.returncode == 0, same.stderr[-2000:]  # the REST view says what MLflow's client says
    answer = _genrec(["recommend", "--user", "12347", "-k", "3", "--json"], second)
    assert answer.returncode == 0, answer.stderr
    top = json.loads(answer.stdout)
    assert len(top["items"]) == 3 and not top["fallback"]
    assert not (stack["root"] / "second-home" / "mlflow.db").exists()


def test_stack_up_refuses_a_second_start_and_status_prints_the_environment(stack):
    again = _genrec(["stack", "up", "--dir", str(stack["root"] / "stack")], stack["base"], timeout=60)
    assert again.returncode == 2 and "already runs" in again.stderr
    status = _genrec(["stack", "status", "--dir", str(stack["root"] / "stack"), "--json"], stack["base"], timeout=60)
    running = json.loads(status.stdout)["running"]
    assert running and all(running.values()), running
    assert json.loads(status.stdout)["env"] == stack["env"]
