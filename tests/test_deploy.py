"""The scheduled deployments in deploy/ are registered with the Prefect API by `genrec deploy`, into
the work pool the file names, runnable by a worker (tests/test_stack.py runs one for real)."""

from pathlib import Path


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


def test_genrec_deploy_registers_it_into_the_work_pool(genrec_home):
    from prefect.client.orchestration import get_client

    result = CliRunner().invoke(app, ["deploy", "--pool", "genrec-test-pool"])
    assert result.exit_code == 0, result.stderr
    assert "work pool 'genrec-test-pool' created" in result.stdout and "No worker polls it" in result.stdout
    again = CliRunner().invoke(app, ["deploy", "--pool", "genrec-test-pool"])  # a second deploy keeps them runnable
    assert again.exit_code == 0 and "created" not in again.stdout
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("genrec-train/daily-retrain")
        batch = client.read_deployment_by_name("genrec-batch/nightly-batch")
        pool = client.read_work_pool("genrec-test-pool")
    assert pool.type == "process"
    root = str(Path(__file__).resolve().parents[1])
    for d in (deployment, batch):
        assert d.work_pool_name == "genrec-test-pool"
        assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": root}}]
        assert d.job_variables["env"]["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    assert deployment.entrypoint == "flows/training.py:train_flow"
    assert [s.schedule.cron for s in batch.schedules] == ["0 5 * * *"]


def test_deploy_takes_a_pool_or_serve_not_both(genrec_home):
    result = CliRunner().invoke(app, ["deploy", "--pool", "p", "--serve"])
    assert result.exit_code == 2 and "not both" in result.stderr
