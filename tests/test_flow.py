"""The training flow end to end on the real Prefect engine, MLflow registry (SQLite) and GX suites."""

import json
from uuid import UUID

import pytest
from typer.testing import CliRunner

from genrec import registry
from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _cli(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_flow_twice_then_bad_data(genrec_home, clustered_csv, tmp_path):
    from flows.training import train_flow

    first = train_flow(data=str(clustered_csv), format="csv", config="tiny")
    assert first["status"] == "promoted", first["decision"]
    assert first["model_version"] == first["champion_version"] == "1"
    assert first["metrics"]["ndcg@20"] > first["baseline_metrics"]["ndcg@20"]
    assert first["champion_metrics"] is None
    assert (genrec_home / "mlflow.db").is_file()
    assert first["data_docs"].startswith(str(genrec_home)) and first["data_docs"].endswith("index.html")

    # The MLflow run holds per-epoch losses and validation NDCG, the curves and the data-quality log.
    client = registry.client()
    run = client.get_run(first["mlflow_run_id"])
    epochs = len(client.get_metric_history(run.info.run_id, "d_loss"))
    assert epochs >= 1 and len(client.get_metric_history(run.info.run_id, "val_ndcg_at_20")) == epochs
    assert run.data.params["model.name"] == "cfgan" and run.data.tags["data_fingerprint"] == first["data_fingerprint"]
    # What validation chose, beside the config: the best epoch of the curve logged above.
    curve = client.get_metric_history(run.info.run_id, "val_ndcg_at_20")
    assert run.data.params["chosen.epochs"] == str(max(curve, key=lambda m: (m.value, -m.step)).step)
    # The prepared data is the run's input dataset, under genrec's own fingerprint.
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.digest == first["data_fingerprint"] and logged.dataset.name == clustered_csv.name
    assert json.loads(logged.dataset.profile)["num_rows"] == first["dataset"]["interactions"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"training_curves.png", "data_quality.json"} <= artifacts

    # The flow published its markdown report to Prefect.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect_client:
        reports = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["genrec-training-report"])))
    report = next(r for r in reports if str(r.flow_run_id) == first["flow_run_id"])
    assert "promote" in report.data and first["data_docs"] in report.data and "ndcg@20" in report.data
    with get_client(sync_client=True) as prefect_client:
        decisions = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["genrec-gate-decision"])))
    decision = next(r for r in decisions if str(r.flow_run_id) == first["flow_run_id"]).data
    assert decision.startswith("# Gate: promote") and first["decision"]["reasons"][0] in decision

    # The training loop's progress reaches the flow run's logs (a worker shows them), every
    # train.log_every epochs.
    import time

    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    progress, deadline = [], time.monotonic() + 30  # logs reach the API in batches
    while not progress and time.monotonic() < deadline:
        with get_client(sync_client=True) as prefect_client:
            logs = prefect_client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(first["flow_run_id"])])))
        progress = [log.message for log in logs if log.message.startswith("cfgan epoch ")]
        time.sleep(0.5)
    assert progress and progress[0].startswith("cfgan epoch 10/30: d_loss"), [log.message for log in logs][-20:]

    second = train_flow(data=str(clustered_csv), format="csv", config="tiny")
    assert second["model_version"] == "2"
    # Same data again: the data has timestamps, so the gate may only test on interactions newer than
    # the champion's training cutoff, and there are none: no fair comparison, no promotion.
    assert second["status"] == "not_promoted" and second["champion_version"] == "1"
    assert "cutoff" in second["gate_test"]["rule"]
    assert second["gate_test"]["interactions"] == 0 and second["gate_test"]["removed"] == first["dataset"]["test"]
    assert any("no fair comparison" in r for r in second["decision"]["reasons"])
    assert second["test_metrics"]["ndcg@20"] == pytest.approx(first["metrics"]["ndcg@20"])  # same model
    assert second["data_docs"] != first["data_docs"]  # one report per run

    versions = {v["version"]: v for v in registry.list_versions("genrec")}
    assert versions["1"]["aliases"] == ["champion"] and versions["2"]["aliases"] == ["challenger"]
    assert versions["2"]["decision"]["promote"] is False and versions["2"]["decision"]["reasons"]
    assert versions["2"]["data_fingerprint"] == versions["1"]["data_fingerprint"] == first["data_fingerprint"]
    assert versions["2"]["flow_run_id"] == second["flow_run_id"]
    events = registry.history("genrec")
    assert [(e["from_version"], e["to_version"]) for e in events] == [(None, "1")]
    assert first["flow_run_id"] in events[0]["actor"]

    # Broken data: exit 3, JSON says so, nothing trained or registered, champion untouched.
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id\n1,\n,2\n")
    code, out, err = _cli("run", "--data", str(bad), "--format", "csv", "--config", "tiny", "--json")
    assert code == 3, err
    payload = json.loads(out)
    assert payload["status"] == "data_rejected" and payload["model_version"] is None
    assert "bad.csv" in err and "item_id" in err and "Traceback" not in err
    with get_client(sync_client=True) as prefect_client:
        reports = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["genrec-training-report"])))
    rejected = next(r for r in reports if str(r.flow_run_id) == payload["flow_run_id"]).data
    assert "data rejected" in rejected and "| suite | expectation |" in rejected and "**FAIL**" in rejected
    assert payload["data_docs"] in rejected
    assert len(registry.list_versions("genrec")) == 2
    assert registry.champion_version("genrec") == "1"
    assert len(registry.history("genrec")) == 1

    # The registered model answers through its own interface, as a server would.
    model = registry.load_model("models:/genrec@champion")
    user = next(iter(clustered_csv.read_text().splitlines()[1:])).split(",")[0]
    import pandas as pd

    out = model.predict(pd.DataFrame({"user_id": [user], "history": [[]]}), params={"k": 5})
    assert out.iloc[0]["user_id"] == user and len(out.iloc[0]["items"]) == 5
    assert all(i.startswith("i" + user[1]) for i in out.iloc[0]["items"][:3])  # own cluster first


def test_a_long_stage_says_so_while_it_runs(prefect_harness, monkeypatch, caplog):
    import time

    from prefect import flow

    import flows.training as training

    monkeypatch.setattr(training, "HEARTBEAT_SECONDS", 0.1)

    @flow(name="stage-clock")
    def staged() -> list:
        clock = training.StageClock()
        with clock("quick"):
            pass
        with clock("slow"):
            time.sleep(0.35)
        return clock.stages

    stages = staged()
    assert [s["stage"] for s in stages] == ["quick", "slow"] and stages[1]["seconds"] >= 0.35
    beats = [r.getMessage() for r in caplog.records if "running for" in r.getMessage()]
    assert len(beats) >= 2 and all(b.startswith("stage slow: running for") for b in beats)
