"""Checkpoint retention (train.keep_checkpoints): a finished run prunes the checkpoints of older
finished runs, never one in progress, and keeps a crashed one until that many newer runs finished."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genrec.errors import UsageError
from genrec.pipeline import Checkpoint, prune_checkpoints, run_checkpoint


def _folder(root: Path, name: str, written: float, size: int, info: dict | None, file: str = "checkpoint.pt"
            ) -> Checkpoint:
    c = Checkpoint(root / name)
    c.folder.mkdir(parents=True)
    if info is not None:
        c.write_info(**info, mlflow_run_id=f"run-{name}")
    path = c.folder / file
    path.write_bytes(b"x" * size)
    os.utime(path, (written, written))
    return c


def test_prune_keeps_the_newest_finished_and_runs_in_progress(genrec_home, caplog):
    root = genrec_home / "checkpoints"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        t = 1_700_000_000.0
        folders = {
            # name: (checkpoint last written, size, run.json)
            "20260101T000000000000Z": (t + 400, 1000, {"status": "trained"}),  # resumed later: old stamp, new file
            "20260101T000001000000Z": (t + 100, 2000, {"status": "trained"}),
            "20260101T000002000000Z": (t + 200, 3000, {"status": "failed"}),
            "20260101T000003000000Z": (t + 300, 4000, {"status": "trained"}),
            "20260101T000004000000Z": (t + 50, 5000, {"status": "training", "pid": live.pid}),  # in progress
            "20260101T000005000000Z": (t + 450, 6000, {"status": "training", "pid": dead.pid}),  # recent crash
            "20260101T000006000000Z": (t + 50, 7000, {"status": "training", "pid": dead.pid}),  # old crash
            "20260101T000007000000Z": (t + 10, 8000, None),  # no run.json: treated as finished
            "20260101T000009000000Z": (t + 500, 9000, {"status": "trained"}),  # the run that just finished
        }
        made = {name: _folder(root, name, *spec) for name, spec in folders.items()}
        _folder(root, "20260101T000008000000Z", t, 500, {"status": "failed"}, file="checkpoint.pt.tmp")  # half-written
        current = made["20260101T000009000000Z"]

        with caplog.at_level(logging.INFO, logger="genrec.pipeline"):
            pruned = prune_checkpoints(2, current)

        survivors = sorted(p.parent.name for p in root.glob("*/checkpoint.pt"))
        # kept: the current run and the resumed one (the 2 newest finished), the run in progress, and
        # the crash that fewer than 2 finished runs are newer than.
        assert survivors == ["20260101T000000000000Z", "20260101T000004000000Z", "20260101T000005000000Z",
                             "20260101T000009000000Z"]
        assert [c.folder.name for c in pruned.folders] == ["20260101T000001000000Z", "20260101T000002000000Z",
                                                           "20260101T000003000000Z", "20260101T000006000000Z",
                                                           "20260101T000007000000Z"]
        assert not list(root.glob("*/*.pt.tmp"))
        assert pruned.freed == 2000 + 3000 + 4000 + 7000 + 8000 + 500
        assert "pruned 5 checkpoints" in caplog.text and "23.9 KB freed" in caplog.text

        # A pruned run keeps its run.json, marked, and --resume of it says why it cannot.
        info = made["20260101T000003000000Z"].info()
        assert info["status"] == "trained" and info["pruned"]["keep"] == 2
        for name in ("20260101T000003000000Z", "run-20260101T000003000000Z"):
            with pytest.raises(UsageError, match="deleted .* keep only the newest 2 .train.keep_checkpoints"):
                run_checkpoint(name)
        assert run_checkpoint("20260101T000005000000Z") == made["20260101T000005000000Z"]

        # keep=0: the current run's checkpoint goes too, and the crash; the run in progress stays.
        again = prune_checkpoints(0, current)
        assert [p.parent.name for p in root.glob("*/checkpoint.pt")] == ["20260101T000004000000Z"]
        assert len(again.folders) == 3 and again.freed == 1000 + 6000 + 9000
    finally:
        live.kill()
        live.wait()


@pytest.mark.usefixtures("prefect_harness")
def test_two_runs_keep_one_checkpoint(genrec_home, clustered_csv):
    from genrec.cli import app

    def run(*extra: str):
        result = CliRunner().invoke(app, ["run", "--data", str(clustered_csv), "--format", "csv", "--config", "tiny",
                                          "--set", "train.keep_checkpoints=1", "--set", "train.epochs=3", *extra,
                                          "--json"])
        return result.exit_code, result.stdout, result.stderr

    results = []
    for _ in range(2):
        code, out, err = run()
        assert code == 0, err[-3000:]
        results.append(json.loads(out))
    (left,) = (genrec_home / "checkpoints").glob("*/checkpoint.pt")
    assert json.loads((left.parent / "run.json").read_text())["mlflow_run_id"] == results[1]["mlflow_run_id"]
    assert len(list((genrec_home / "checkpoints").iterdir())) == 2  # the first run's run.json stays

    code, _, err = run("--resume", results[0]["mlflow_run_id"])
    assert code == UsageError.exit_code and "train.keep_checkpoints" in err and "Traceback" not in err


def test_a_checkpoint_of_another_layout_is_not_resumed(genrec_home, monkeypatch):
    """A dead run's checkpoint is picked up again only when it was written in this genrec's layout
    (CHECKPOINT_FORMAT is part of the digest), never loaded into trainers it does not fit."""
    from types import SimpleNamespace

    from genrec import pipeline
    from genrec.config import load_config

    cfg, data = load_config("default"), SimpleNamespace(fingerprint="0123456789abcdef")
    current = pipeline.training_digest(cfg, data)
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "CHECKPOINT_FORMAT", pipeline.CHECKPOINT_FORMAT - 1)
        older = pipeline.training_digest(cfg, data)
    assert older != current

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = genrec_home / "checkpoints"
    _folder(root, "20260101T000001000000Z", 1_700_000_000.0, 10, {"status": "training", "pid": dead.pid,
                                                                   "digest": older})
    assert pipeline.find_checkpoint(None, current) is None
    fitting = _folder(root, "20260101T000000000000Z", 1_700_000_000.0, 10, {"status": "training", "pid": dead.pid,
                                                                            "digest": current})
    assert pipeline.find_checkpoint(None, current) == fitting
