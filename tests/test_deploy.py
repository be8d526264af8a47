"""The scheduled deployment in deploy/ is registered with the Prefect API by `genrec deploy`."""

import pytest
from typer.testing import CliRunner

from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_deployment_file_has_a_daily_schedule():
    from flows.deployments import load_deployments

    (deployment,) = load_deployments()
    assert deployment.name == "daily-retrain" and deployment.flow_name == "genrec-train"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    assert deployment.parameters["config"] == "default"


def test_genrec_deploy_registers_it(genrec_home):
    from prefect.client.orchestration import get_client

    result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 0, result.stderr
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("genrec-train/daily-retrain")
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    assert deployment.entrypoint.endswith("training.py:train_flow")
