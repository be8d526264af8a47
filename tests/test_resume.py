"""`genrec run` killed with SIGKILL: nothing of it keeps running; mid-training, the registry is
untouched and the next run on the same data and settings resumes from the checkpoint, marks the
dead run's MLflow run KILLED and its Prefect flow run CRASHED, and registers the model an
uninterrupted run registers; between registration and promotion, `genrec models` says why the
version that passed the gate is not champion."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from genrec.crashpoints import ENV as CRASH_AT

SETTINGS = ["--config", "tiny", "--set", "train.epochs=24", "--set", "train.patience=24", "--set",
            "train.checkpoint_every=4"]


def _run(home: Path, data: Path, *extra: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """`genrec run` in a process group of its own (so that the Prefect server it starts goes with it)."""
    env = dict(os.environ, GENREC_HOME=str(home), PREFECT_HOME=str(home / "prefect"))
    for name in (CRASH_AT, "MLFLOW_TRACKING_URI", "PREFECT_API_URL"):  # MLflow exports the URI it was last given
        env.pop(name, None)
    if crash_at is not None:
        env[CRASH_AT] = crash_at
    genrec = Path(sys.executable).parent / "genrec"
    # Files, not pipes: a server the killed process leaves behind would hold a pipe open.
    with (home.parent / f"{home.name}.out").open("w+") as out, (home.parent / f"{home.name}.err").open("w+") as err:
        proc = subprocess.Popen([str(genrec), "run", "--data", str(data), "--format", "csv", *SETTINGS, *extra,
                                 "--json"], env=env, stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            proc.wait(timeout=400)
            if crash_at is not None:
                _assert_nothing_left(home)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever a failed check left behind
            except ProcessLookupError:
                pass
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


def _processes_of(home: Path) -> list[int]:
    marker = f"GENREC_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[-1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_nothing_left(home: Path, within: float = 15.0) -> None:
    """The killed process's children (Prefect's temporary server) end with it."""
    deadline = time.monotonic() + within
    while _processes_of(home) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _processes_of(home), [Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in _processes_of(home)]


def _weights(home: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (home / "mlartifacts").rglob("weights.safetensors")}


def _mlflow_runs(home: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("genrec")
    return {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}, client


def test_killed_run_resumes_to_the_uninterrupted_model(tmp_path, clustered_csv):
    killed_home = tmp_path / "killed"
    killed = _run(killed_home, clustered_csv, crash_at="checkpoint:12")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (folder,) = (killed_home / "checkpoints").iterdir()
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "training"
    runs, client = _mlflow_runs(killed_home)
    assert [r.info.status for r in runs.values()] == ["RUNNING"]  # what the kill left
    assert client.search_registered_models() == []  # nothing registered by the killed run

    resumed = _run(killed_home, clustered_csv)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout)
    assert result["resumed_from"] == info["mlflow_run_id"] and result["model_version"] == "1"
    assert info["flow_run_id"] in result["closed_runs"] and info["mlflow_run_id"] in result["closed_runs"]
    runs, _ = _mlflow_runs(killed_home)
    assert runs[info["mlflow_run_id"]].info.status == "KILLED"
    assert "ended without finishing" in runs[info["mlflow_run_id"]].data.tags["genrec.end_reason"]
    assert runs[result["mlflow_run_id"]].info.status == "FINISHED"
    assert runs[result["mlflow_run_id"]].data.tags["resumed_from"] == info["mlflow_run_id"]

    whole_home = tmp_path / "whole"
    whole = _run(whole_home, clustered_csv)
    assert whole.returncode == 0, whole.stderr[-3000:]
    reference = json.loads(whole.stdout)
    assert reference["resumed_from"] is None
    assert result["test_metrics"] == reference["test_metrics"]
    assert list(_weights(killed_home).values()) == list(_weights(whole_home).values())



def test_killed_between_registration_and_promotion(tmp_path, clustered_csv, monkeypatch):
    home = tmp_path / "home"
    killed = _run(home, clustered_csv, crash_at="flow:registered")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    monkeypatch.setenv("GENREC_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from genrec import registry

    (version,) = registry.list_versions("genrec")
    assert version["decision"]["promote"] is True and "champion" not in version["aliases"]
    assert version["promotion"]["status"] == "not promoted"
    assert "ended (process" in version["promotion"]["reason"] and "genrec promote" in version["promotion"]["reason"]
