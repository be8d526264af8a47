"""The tuning grid as a subflow: each candidate config fitted as a task of its own, on the task
runner `tune.*` names (Prefect's thread pool, or Dask through prefect-dask: a local cluster or a
scheduler's address), then the best on validation NDCG@20 chosen (ties: the first)."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from genrec import pipeline
from genrec.config import Config, TuneConfig
from genrec.dataset import Dataset
from genrec.models.base import Recommender
from genrec.training import FitOptions


@task(name="fit-candidate", cache_policy=NO_CACHE, persist_result=False)
def fit_candidate(data: Dataset, cfg: Config, label: str) -> tuple[Recommender, float | None, dict[str, Any]]:
    """The candidate fitted, its validation score, and where and when it was fitted."""
    started = time.time()
    model = pipeline.train(data, cfg, FitOptions(progress=False))
    score = pipeline.validation_ndcg(model, data)
    get_run_logger().info("candidate %s: validation ndcg@20 %s", label, "n/a" if score is None else f"{score:.4f}")
    where = {"worker": f"{socket.gethostname()}:{os.getpid()}", "started": started, "seconds": time.time() - started}
    return model, score, where


@flow(name="genrec-tune")
def tune_flow(data: Dataset, candidates: list[tuple[str, Config]]) -> dict[str, Any]:
    """Every candidate fitted (at once, as far as the task runner allows); the chosen one's index
    and model, and each candidate's validation score."""
    futures = [fit_candidate.submit(data, cfg, label) for label, cfg in candidates]
    fitted = [f.result() for f in futures]
    scores = [score for _, score, _ in fitted]
    chosen = pipeline.grid_choice(scores)
    get_run_logger().info("chosen on validation: %s", candidates[chosen][0])
    return {"chosen": chosen, "model": fitted[chosen][0],
            "candidates": [{"overrides": label, "validation_ndcg@20": None if s is None else round(s, 6),
                            "worker": where["worker"], "started": round(where["started"], 3),
                            "seconds": round(where["seconds"], 3)}
                           for (label, _), (_, s, where) in zip(candidates, fitted)]}


def task_runner(tune: TuneConfig):
    """The task runner `tune.task_runner` names."""
    if tune.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if tune.dask_address:
            return DaskTaskRunner(address=tune.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": tune.workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": ":0"})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=tune.workers)


def run_grid(data: Dataset, candidates: list[tuple[str, Config]], tune: TuneConfig) -> dict[str, Any]:
    """Fit `candidates` (`pipeline.grid_configs`) on the task runner `tune` names."""
    return tune_flow.with_options(task_runner=task_runner(tune))(data, candidates)
