"""Every kind of broken input: exit 3 (2 for a path that is not a file), one clear sentence naming
the file and what is wrong, no traceback, and nothing touched: registry, champion, earlier runs.
`genrec validate` and `genrec run` share one pipeline: they give the same code and sentence."""

import hashlib
import json

import pytest
from typer.testing import CliRunner

from broken_inputs import KINDS, write
from genrec import registry
from genrec.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(("error:", "data rejected:"))]
    assert lines, err
    return " ".join(lines)


def _snapshot(home):
    """Everything a later run must leave alone: files of earlier runs and the registry's state."""
    files = {p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for sub in ("data_docs", "datasets", "checkpoints", "mlartifacts") for p in (home / sub).rglob("*")
             if p.is_file()}
    versions = [(v["version"], tuple(v["aliases"]), json.dumps(v["decision"], sort_keys=True))
                for v in registry.list_versions("genrec")]
    return files, versions, registry.champion_version("genrec"), registry.history("genrec")


def test_run_rejects_and_loses_nothing(tmp_path, genrec_home, clustered_csv):
    code, _, err = cli("run", "--data", clustered_csv, "--format", "csv", "--config", "tiny", "--json")
    assert code == 0, err
    before = _snapshot(genrec_home)
    assert before[2] == "1"
    for kind in KINDS:
        case = tmp_path / kind
        case.mkdir()
        path, fmt, words = write(kind, case)
        code, out, err = cli("run", "--data", path, "--format", fmt, "--config", "tiny", "--json")
        assert code == 3, (kind, err)
        assert json.loads(out)["status"] == "data_rejected"
        sentence = _one_sentence(err)
        assert path.name in sentence and "Traceback" not in err, (kind, err)
        for word in words:
            assert word.lower() in sentence.lower(), (kind, word, sentence)
        _assert_untouched(genrec_home, before)
        code, _, err = cli("validate", path, "--format", fmt, "--config", "tiny")
        assert code == 3 and _one_sentence(err) == sentence, (kind, err)
    for missing in (tmp_path / "no-such.csv", tmp_path):
        code, _, err = cli("run", "--data", missing, "--config", "tiny")
        assert code == 2 and "Traceback" not in err
        _assert_untouched(genrec_home, before)


def _assert_untouched(home, before):
    files, *registry_state = _snapshot(home)
    assert registry_state == list(before[1:])
    assert {k: files.get(k) for k in before[0]} == before[0]  # earlier runs' files, byte for byte
    new = set(files) - set(before[0])
    assert all(name.startswith("data_docs/") for name in new)  # a rejected run adds only its own report
