"""The scheduled deployment in deploy/ is registered with the Prefect API by `genrec deploy`."""

import pytest
from typer.testing import CliRunner

from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_deployment_file_has_daily_schedules():
    from flows.deployments import load_deployments

    train, batch = load_deployments()
    assert train.name == "daily-retrain" and train.flow_name == "genrec-train"
    assert [s.schedule.cron for s in train.schedules] == ["0 3 * * *"]
    assert train.parameters["config"] == "default"
    assert batch.name == "nightly-batch" and batch.flow_name == "genrec-batch"
    assert [s.schedule.cron for s in batch.schedules] == ["0 5 * * *"] and batch.parameters["k"] == 10


def test_genrec_deploy_registers_it(genrec_home):
    from prefect.client.orchestration import get_client

    result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 0, result.stderr
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("genrec-train/daily-retrain")
        batch = client.read_deployment_by_name("genrec-batch/nightly-batch")
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    assert deployment.entrypoint.endswith("training.py:train_flow")
    assert [s.schedule.cron for s in batch.schedules] == ["0 5 * * *"]
