"""GENREC_HOME moves: a home copied to another place and opened there reads its own files (the
registry's paths are rewritten and the rewrite is said), even once the original is gone."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_a_moved_home_reads_its_own_files(genrec_home, clustered_csv, tmp_path, monkeypatch):
    code, out, err = cli("run", "--data", clustered_csv, "--format", "csv", "--config", "tiny",
                         "--set", "model.name=ease", "--json")
    assert code == 0, err
    before = cli("recommend", "--user", "u0-0", "-k", "5", "--json")
    moved = tmp_path / "elsewhere" / "home"
    shutil.copytree(genrec_home, moved)
    shutil.rmtree(genrec_home)  # nothing may still be read from the old place
    monkeypatch.setenv("GENREC_HOME", str(moved))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # MLflow exports the last URI it was given

    code, out, err = cli("recommend", "--user", "u0-0", "-k", "5", "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads(before[1])
    assert f"GENREC_HOME was moved from {genrec_home} to {moved}" in err
    assert str(genrec_home).encode() + b"/" not in (moved / "mlflow.db").read_bytes()
    assert all(str(genrec_home) + "/" not in p.read_text() for p in moved.rglob("MLmodel"))

    # The next run gates against the champion stored in the moved home, and logs there.
    code, out, err = cli("run", "--data", clustered_csv, "--format", "csv", "--config", "tiny",
                         "--set", "model.name=ease", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["champion_metrics"] is not None and "GENREC_HOME was moved" not in err
    assert not genrec_home.exists()
