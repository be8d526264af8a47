"""The registered model is data loaded by code: a version registered by an older genrec (a pickled
Python object) is refused with a message naming it and what to do, never unpickled; a version
registered now loads in a fresh virtual environment with only its logged requirements installed."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from genrec import registry
from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _register_a_pickled_version() -> str:
    """What genrec 0.1 registered: a pyfunc whose Python model MLflow pickles, without genrec's format
    in its metadata."""
    import mlflow

    class Pickled(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            raise AssertionError("an old model must never be loaded")

    run = registry.start_run("genrec")
    info = mlflow.pyfunc.log_model(name="model", python_model=Pickled())
    registry.end_run()
    assert run.run_id
    version = registry.register(info.model_uri, "genrec", {})
    registry.move_champion("genrec", version, reason="registered by genrec 0.1", actor="test")
    return version


def test_an_older_version_is_refused_by_name_and_training_goes_on(genrec_home, clustered_csv):
    old = _register_a_pickled_version()
    for command in (["recommend", "--user", "u0-0"], ["serve", "--port", "1"]):
        code, _, err = cli(*command)
        assert code == 4, err
        assert f"models:/genrec/{old}" in err and "genrec run" in err and "never unpickles" in err
        assert "Traceback" not in err
    # A run trains, registers and gates against popularity alone, and leaves the champion to a person.
    code, out, err = cli("run", "--data", clustered_csv, "--format", "csv", "--config", "tiny", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "not_promoted" and result["champion_version"] == old
    assert any("could not be loaded" in r and f"models:/genrec/{old}" in r for r in result["decision"]["reasons"])
    code, _, err = cli("promote", result["model_version"], "--reason", "checked the report")
    assert code == 0, err
    code, out, err = cli("recommend", "--user", "u0-0", "-k", "3", "--json")
    assert code == 0 and len(json.loads(out)["items"]) == 3


LOAD = textwrap.dedent("""
    import json, sys
    import mlflow, pandas as pd
    model = mlflow.pyfunc.load_model(sys.argv[1])
    out = model.predict(pd.DataFrame({"user_id": ["u1-0"], "history": [["i1-0", "i1-1", "i1-2"]]}), params={"k": 4})
    print(json.dumps(out.iloc[0]["items"]))
""")


def test_a_version_loads_in_a_fresh_venv_with_only_its_requirements(genrec_home, clustered_csv, tmp_path):
    """The logged requirements name the shipped wheel of this genrec (pinned by its version), so
    that they install where no index has genrec; the fresh environment answers as this one does."""
    code, out, err = cli("run", "--data", clustered_csv, "--format", "csv", "--config", "tiny", "--json")
    assert code == 0, err
    version = json.loads(out)["model_version"]
    import mlflow

    folder = Path(mlflow.artifacts.download_artifacts(registry.version_uri("genrec", version), dst_path=str(tmp_path)))
    requirements = (folder / "requirements.txt").read_text().split()
    from genrec.wheel import wheel_name

    assert f"artifacts/{wheel_name()}" in requirements and (folder / "artifacts" / wheel_name()).is_file()
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                              "-r", "requirements.txt"], cwd=folder, env=env, capture_output=True, text=True,
                             timeout=900)
    assert install.returncode == 0, (requirements, install.stderr[:3000])
    fresh = subprocess.run([str(venv / "bin" / "python"), "-c", LOAD, str(folder)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    here = registry.load_model(registry.version_uri("genrec", version)).predict(
        pd.DataFrame({"user_id": ["u1-0"], "history": [["i1-0", "i1-1", "i1-2"]]}), params={"k": 4})
    assert json.loads(fresh.stdout.strip().splitlines()[-1]) == list(here.iloc[0]["items"])


def test_a_broken_champion_artifact_is_named_and_never_promoted_over(genrec_home, clustered_csv):
    def train():
        code, out, err = cli("run", "--data", clustered_csv, "--format", "csv", "--config", "tiny",
                             "--set", "model.name=ease", "--json")
        assert code == 0, err
        return json.loads(out)

    def refused(version: str, stored: Path) -> None:
        for command in (["recommend", "--user", "u0-0"], ["serve", "--port", "1"], ["batch"]):
            code, _, err = cli(*command)
            assert code == 4, err
            assert f"Version {version} of model 'genrec'" in err and str(stored) in err and "Traceback" not in err

    champion = train()["model_version"]
    stored = Path(registry._stored_at(registry.version_uri("genrec", champion)))
    next(stored.rglob("weights.safetensors")).write_bytes(b"\x00garbage" * 10)  # corrupt
    refused(champion, stored)
    result = train()
    assert result["status"] == "not_promoted" and result["champion_version"] == champion
    assert any("could not be loaded" in r and f"Version {champion}" in r for r in result["decision"]["reasons"])

    # The same for a file that is missing, once a person promoted the new version.
    assert cli("promote", result["model_version"], "--reason", "checked")[0] == 0
    stored = Path(registry._stored_at(registry.version_uri("genrec", result["model_version"])))
    next(stored.rglob("serving.json")).unlink()
    refused(result["model_version"], stored)
