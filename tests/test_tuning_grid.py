"""The training flow's tuning grid: candidates fitted as tasks, chosen on validation; Dask (a local
cluster of worker processes, through prefect-dask) fits them at once and makes the sequential
run's choice."""

from __future__ import annotations

import os

import pytest

from conftest import clustered_interactions
from genrec import pipeline
from genrec.config import load_config
from genrec.errors import UsageError

pytestmark = pytest.mark.usefixtures("prefect_harness")

GRID = ["model.name=ease", "tune.grid=model.lambdas=1|30|3000"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from genrec.validation import DataValidator

    frame = clustered_interactions(n_clusters=4, users_per_cluster=40, items_per_cluster=30, density=0.3, seed=1)
    path = tmp_path_factory.mktemp("grid") / "log.csv"
    frame.to_csv(path, index=False)
    cfg = load_config("tiny", GRID)
    checked = pipeline.validate(path, cfg, DataValidator(path.parent / "docs"))
    return pipeline.prepare(checked, cfg)


def _grid(data, *overrides: str) -> dict:
    from flows.tuning import run_grid

    cfg = load_config("tiny", [*GRID, *overrides])
    return run_grid(data, pipeline.grid_configs("tiny", [*GRID, *overrides], cfg), cfg.tune)


def test_dask_fits_the_grid_at_once_and_chooses_as_the_sequential_run(data, genrec_home):
    sequential = _grid(data, "tune.task_runner=threads", "tune.workers=1")
    scores = [c["validation_ndcg@20"] for c in sequential["candidates"]]
    assert scores[1] > max(scores[0], scores[2])  # a middle strength fits these clusters best
    assert sequential["chosen"] == 1 and sequential["model"].lambda_ == 30.0
    spans = [(c["started"], c["started"] + c["seconds"]) for c in sequential["candidates"]]
    assert all(a[1] <= b[0] + 0.05 for a, b in zip(spans, spans[1:]))  # one after another

    dask = _grid(data, "tune.task_runner=dask", "tune.workers=2")
    assert dask["chosen"] == sequential["chosen"]
    assert [c["validation_ndcg@20"] for c in dask["candidates"]] == scores
    workers = {c["worker"] for c in dask["candidates"]}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)  # two worker processes


def test_grid_entries_are_checked_before_anything_runs():
    with pytest.raises(UsageError, match="KEY=V1"):
        load_config("tiny", ["tune.grid=model.lambdas"])
    with pytest.raises(UsageError, match="model"):
        load_config("tiny", ["tune.grid=gate.min_improvement=0|1"])
    cfg = load_config("tiny", ["tune.grid=model.name=pop|nosuchfamily"])
    with pytest.raises(UsageError, match="nosuchfamily"):
        pipeline.grid_configs("tiny", ["tune.grid=model.name=pop|nosuchfamily"], cfg)
