"""Human approval: a training run whose candidate passed the gate pauses until `genrec approve` or
`genrec reject` answers (or its timeout passes); only an approval moves `champion`."""

import threading
import time
import uuid

import pytest
from typer.testing import CliRunner

from genrec import registry
from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")

APPROVAL = ["gate.require_approval=true", "gate.approval_poll_interval=1"]


def _cli(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _start(clustered_csv, *overrides):
    """The training flow in a thread; returns the thread and a dict that receives its result."""
    from flows.training import train_flow

    box = {}

    def target():
        try:
            box["result"] = train_flow(data=str(clustered_csv), format="csv", config="tiny",
                                       overrides=[*APPROVAL, *overrides])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def _pending(thread, box, timeout=300.0) -> tuple[str, str]:
    """Wait until the run's candidate is registered and waits for approval: (version, flow run id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for v in registry.list_versions("genrec"):
            if (v.get("approval") or {}).get("status") == "pending":
                return v["version"], v["approval"]["flow_run_id"]
        if not thread.is_alive():
            pytest.fail(f"the flow ended without waiting for approval: {box}")
        time.sleep(0.5)
    pytest.fail("no version waited for approval in time")


def _paused(run_id: str) -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(uuid.UUID(run_id)).state
    return state is not None and state.is_paused()


def _wait_paused(run_id: str, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not _paused(run_id):
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {run_id} never paused")
        time.sleep(0.2)


def test_approve_promotes_and_records_who(genrec_home, clustered_csv):
    thread, box = _start(clustered_csv)
    version, run_id = _pending(thread, box)
    _wait_paused(run_id)
    assert registry.champion_version("genrec") is None  # nothing moves before the answer
    code, out, err = _cli("approve", run_id, "--reason", "checked the report")
    assert code == 0, err
    thread.join(120)
    result = box["result"]
    assert result["status"] == "promoted" and result["champion_version"] == version
    assert result["decision"]["approval"]["approved"] is True
    assert result["decision"]["reasons"][-1].startswith("approval: approved by genrec approve")
    assert result["decision"]["reasons"][-1].endswith("checked the report")
    (event,) = registry.history("genrec")
    assert event["to_version"] == version and "approved by genrec approve" in event["actor"]
    (v,) = registry.list_versions("genrec")
    assert v["approval"]["status"] == "approved"
    # The run is no longer waiting: a second answer is refused (exit 4).
    code, _, err = _cli("reject", run_id)
    assert code == 4 and "not waiting for approval" in err


def test_reject_keeps_the_champion(genrec_home, clustered_csv):
    thread, box = _start(clustered_csv)
    version, run_id = _pending(thread, box)
    _wait_paused(run_id)
    code, _, err = _cli("reject", run_id, "--reason", "coverage looks odd")
    assert code == 0, err
    thread.join(120)
    result = box["result"]
    assert result["status"] == "not_promoted" and result["champion_version"] is None
    assert result["decision"]["promote"] is True  # the gate passed; the person said no
    assert result["decision"]["reasons"][-1].endswith("rejected by genrec reject (user " + _user() + "): coverage looks odd")
    assert registry.history("genrec") == []
    (v,) = registry.list_versions("genrec")
    assert v["approval"]["status"] == "rejected" and v["aliases"] == ["challenger"]


def test_no_answer_in_time_is_a_rejection(genrec_home, clustered_csv):
    from prefect.client.orchestration import get_client

    thread, box = _start(clustered_csv, "gate.approval_timeout=2")
    thread.join(300)
    result = box["result"]
    assert result["status"] == "not_promoted" and registry.champion_version("genrec") is None
    assert result["decision"]["approval"]["answered"] is False
    assert "no answer within 2 s" in result["decision"]["reasons"][-1]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(uuid.UUID(result["flow_run_id"])).state
    assert state.is_completed()  # finished cleanly, not failed as "paused and never resumed"


def test_answer_errors(genrec_home):
    code, _, err = _cli("approve", "not-a-run")
    assert code == 2 and "is not a flow run id" in err
    code, _, err = _cli("approve", str(uuid.uuid4()))
    assert code == 4 and "No Prefect flow run" in err


def _user() -> str:
    import os

    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
