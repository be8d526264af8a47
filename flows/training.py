"""The training flow: validate -> prepare -> train -> evaluate -> gate -> register -> [approve] -> promote.

Each stage is a task around one `genrec.pipeline` function (the CLI calls the same ones); the flow
wires them, adds retries where a task talks to the registry, logs and publishes the report. Rejected
data raises `DataError` before anything is trained or registered, so the champion is untouched;
registration is the last step, so a crash before it leaves the registry as it was. Training writes a
checkpoint as it goes: a run killed mid-training is resumed from it by the next run on the same data
and settings (or by `--resume RUN`), and its MLflow run is marked KILLED.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.approval import Approval, wait_for_approval
from genrec import data as gdata
from genrec import pipeline, registry
from genrec.config import Config, load_config
from genrec.crashpoints import crash_point
from genrec.dataset import Dataset
from genrec.errors import DataError
from genrec.evaluation import EvalResult
from genrec.gating import Decision
from genrec.models.base import Recommender
from genrec.paths import checkpoints_dir, data_docs_dir, run_stamp
from genrec.pipeline import Checked, Checkpoint
from genrec.reporting import decision_markdown, run_markdown, training_curves
from genrec.training import FitOptions
from genrec.validation import DataValidator

TASK = dict(cache_policy=NO_CACHE, persist_result=False)
REGISTRY_TASK = dict(TASK, retries=2, retry_delay_seconds=3)
"""Tasks that only read the registry or write what a retry can write again."""
READS_REGISTRY = {"check-drift"}


HEARTBEAT_SECONDS = 60.0
"""A stage that runs longer says so in the run's log this often (an epoch at shop scale takes minutes)."""


class StageClock:
    """Seconds and the process's peak memory so far at the end of each stage of a run, for the
    result and its log (the scale benchmark reads them); while a stage runs, a log line every
    HEARTBEAT_SECONDS with its time so far."""

    def __init__(self):
        self.stages: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        logger = get_run_logger()
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(HEARTBEAT_SECONDS):
                logger.info("stage %s: running for %.0f s, peak memory so far %.0f MB", name,
                            time.perf_counter() - start, _peak_mb())

        beating = threading.Thread(target=heartbeat, name=f"genrec-stage-{name}", daemon=True)
        beating.start()
        try:
            yield
        finally:
            done.set()
            beating.join()
        peak = _peak_mb()
        self.stages.append({"stage": name, "seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak)})
        logger.info("stage %s: %.1f s, peak memory so far %.0f MB", name, self.stages[-1]["seconds"], peak)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _stage(name: str, call: Callable[[], Any]) -> Any:
    """Run one validation step as a task of its own."""
    return task(name=name, **(REGISTRY_TASK if name in READS_REGISTRY else TASK))(call)()


@task(name="prepare", **TASK)
def prepare(checked: Checked, cfg: Config) -> Dataset:
    return pipeline.prepare(checked, cfg)


HOST_TAG, PID_TAG = "genrec-host:", "genrec-pid:"


@task(name="close-dead-runs", **REGISTRY_TASK)
def close_dead_runs(cfg: Config, flow_run_id: str | None) -> list[str]:
    """Mark this flow run with its host and process, then close the runs that processes now dead
    left open: their MLflow runs KILLED, their Prefect flow runs CRASHED, each with the reason."""
    closed = registry.close_dead_runs(cfg.registry.experiment)
    if flow_run_id is None:
        return closed
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    host = socket.gethostname()
    with get_client(sync_client=True) as client:
        this = client.read_flow_run(UUID(flow_run_id))
        client.update_flow_run(this.id, tags=[*this.tags, f"{HOST_TAG}{host}", f"{PID_TAG}{os.getpid()}"])
        open_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])),
            tags=FlowRunFilterTags(all_=[f"{HOST_TAG}{host}"])))
        for run in open_runs:
            pid = next((t.removeprefix(PID_TAG) for t in run.tags if t.startswith(PID_TAG)), "")
            if run.id == this.id or not pid.isdigit() or registry.process_alive(int(pid)):
                continue
            client.set_flow_run_state(run.id, Crashed(message=f"process {pid} on {host} ended without finishing the "
                                                              f"run (found by flow run {flow_run_id})"), force=True)
            closed.append(str(run.id))
            get_run_logger().warning("marked flow run %s of dead process %s CRASHED", run.id, pid)
    return closed


@task(name="train", **TASK)
def train(data: Dataset, cfg: Config, run: registry.TrainingRun, checkpoint: Checkpoint, resume: bool) -> Recommender:
    logger = get_run_logger()

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        run.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)

    options = FitOptions(checkpoint=checkpoint.file, resume=resume,
                         meta={"digest": pipeline.training_digest(cfg, data), "data_fingerprint": data.fingerprint,
                               "config": cfg.to_dict()}, on_epoch=on_epoch, log=logger)
    model = pipeline.train(data, cfg, options)
    run.log_params({f"chosen.{k}": v for k, v in model.chosen_params_.items()})  # what validation chose
    logger.info("chosen on validation: %s", model.chosen_params_)
    loop = model.training_
    if loop is not None:
        for record in loop.history[: loop.resumed_at or 0]:  # the epochs before the resume
            on_epoch(int(record["epoch"]), record)
        run.log_figure(training_curves(loop.history), "training_curves.png")
        logger.info("trained %d epochs; best epoch %d with validation ndcg@20 %s", len(loop.history),
                    loop.best_epoch, f"{loop.best_score:.4f}" if loop.best_score is not None else "n/a")
    return model


@task(name="evaluate", **TASK)
def evaluate(model: Recommender, data: Dataset, gate_data: Dataset, cfg: Config
             ) -> tuple[EvalResult, EvalResult, dict[str, dict[str, float]]]:
    """The candidate on the test split (at most `eval.max_users` of its users), the popularity
    baseline on the gate's test split, and a composite's components each alone."""
    result, components = pipeline.evaluate_with_components(model, data, cfg)
    return result, pipeline.popularity_baseline(data, gate_data, cfg), components


@task(name="log-candidate", **REGISTRY_TASK)
def log_candidate(model: Recommender, data: Dataset, checked: Checked, cfg: Config) -> str:
    return pipeline.log_candidate(model, data, checked.drift.profile, cfg)


@task(name="score-served", **REGISTRY_TASK)
def score_served(model_uri: str, data: Dataset, cfg: Config) -> EvalResult:
    return pipeline.score_served(model_uri, data, cfg)


@task(name="fair-test", **REGISTRY_TASK)
def fair_gate_data(data: Dataset, cfg: Config, champion: str | None) -> tuple[Dataset, dict[str, Any]]:
    gate_data, info = pipeline.fair_gate_data(data, cfg, champion)
    get_run_logger().info("gate test: %s (%d interactions, %d removed)", info["rule"], info["interactions"],
                          info["removed"])
    return gate_data, info


@task(name="gate", **TASK)
def gate(candidate: EvalResult, champion: EvalResult | None, baseline: EvalResult, cfg: Config,
         champion_error: str | None) -> Decision:
    return pipeline.gate(candidate, champion, baseline, cfg, champion_error)


@task(name="register", **TASK)
def register(model_uri: str, tags: dict[str, Any], cfg: Config) -> str:
    return pipeline.register(model_uri, tags, cfg)


@task(name="promote", **TASK)
def promote(version: str, reasons: list[str], cfg: Config, actor: str, champion_at_gate: str | None) -> str | None:
    return pipeline.promote(version, reasons, cfg, actor, champion_at_gate)


def ask_approval(version: str, cfg: Config, flow_run_id: str | None) -> Approval:
    """Pause until a person approves or rejects promoting `version`; record the answer on it."""
    logger = get_run_logger()
    name = cfg.registry.model_name
    if flow_run_id is None:
        raise RuntimeError("gate.require_approval needs a Prefect flow run to pause.")
    registry.set_version_tags(name, version, {"approval": {"status": "pending", "flow_run_id": flow_run_id}})
    logger.warning(
        "version %s passed the gate and waits for approval (up to %d s): run `genrec approve %s` or "
        "`genrec reject %s`, or press Resume in the Prefect UI", version, cfg.gate.approval_timeout,
        flow_run_id, flow_run_id)
    answer = wait_for_approval(UUID(flow_run_id), cfg.gate.approval_timeout, cfg.gate.approval_poll_interval)
    status = "approved" if answer.approved else ("rejected" if answer.answered else "timed out")
    registry.set_version_tags(name, version, {"approval": {"status": status, "flow_run_id": flow_run_id,
                                                           **answer.as_dict()}})
    logger.info(answer.sentence())
    return answer


def _round(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in metrics.items()}


@flow(name="genrec-train", log_prints=True)
def train_flow(
    data: str | None = None,
    format: str = "auto",
    config: str = "default",
    overrides: list[str] | None = None,
    resume: str | None = None,
) -> dict[str, Any]:
    """Train, evaluate, gate and register a recommender on `data` (default: the bundled sample).
    `resume`: the checkpoint folder (or MLflow run id) of an earlier run to continue."""
    logger = get_run_logger()
    given = list(overrides or []) + ([f"data.format={format}"] if format != "auto" else [])
    cfg = load_config(config, given)
    pipeline.check_trainable(cfg, served=True)
    grid = pipeline.grid_configs(config, given, cfg)
    path = Path(data) if data else gdata.bundled_sample()
    stamp = run_stamp()
    flow_run_id = str(flow_run.id) if flow_run.id else None
    validator = DataValidator(data_docs_dir(stamp))
    logger.info("validating %s (Data Docs: %s)", path, validator.index)

    clock = StageClock()
    try:
        with clock("validate"):
            checked = pipeline.validate(path, cfg, validator, stage=_stage)
    except DataError as exc:
        exc.data_docs = exc.data_docs or str(validator.index)
        create_markdown_artifact(
            key="genrec-training-report",
            markdown=run_markdown({"status": "data_rejected", "message": str(exc), "validation": exc.outcomes,
                                   "data_docs": exc.data_docs}),
            description=f"genrec training run {stamp}: data rejected",
        )
        raise
    with clock("prepare"):
        prepared = prepare(checked, cfg)
    digest = pipeline.training_digest(cfg, prepared)
    earlier = pipeline.find_checkpoint(resume, digest)
    checkpoint = earlier or Checkpoint(checkpoints_dir() / stamp)
    closed_runs = close_dead_runs(cfg, flow_run_id)

    run = registry.start_run(cfg.registry.experiment, run_name=f"train-{stamp}",
                             artifact_location=cfg.registry.artifact_location)
    try:
        run.log_params(cfg.flat())
        resumed_from = earlier.info().get("mlflow_run_id") if earlier is not None else None
        run.set_tags({"data_path": path, "data_fingerprint": prepared.fingerprint, "flow_run_id": flow_run_id,
                      "checkpoint": checkpoint.folder.name, **({"resumed_from": resumed_from} if earlier else {})})
        if earlier is not None:
            logger.warning("resuming the training of run %s from its checkpoint %s", resumed_from, checkpoint.file)
        registry.log_input(prepared.frame(rows=10_000), len(prepared.events), name=path.name,
                           source=path.resolve().as_uri(), digest=prepared.fingerprint)
        attributes = pipeline.attributes_used(prepared, cfg)
        if attributes is not None:
            logger.info("item attributes used: %s", attributes)
        run.log_dict({"cleaning": checked.cleaning, "prepared": prepared.stats, "validation": checked.outcomes,
                      "drift": [c.as_dict() for c in checked.drift.checks], "attributes": attributes},
                     "data_quality.json")
        checkpoint.write_info(status="training", digest=digest, data_fingerprint=prepared.fingerprint,
                              pid=os.getpid(), mlflow_run_id=run.run_id, flow_run_id=flow_run_id)
        with clock("train"):
            if grid:
                from flows.tuning import run_grid

                logger.info("tuning grid: %d candidates on %s", len(grid), cfg.tune.task_runner)
                tuned = run_grid(prepared, grid, cfg.tune)
                label, cfg = grid[tuned["chosen"]]
                model = tuned["model"]
                run.log_dict({"candidates": tuned["candidates"], "chosen": label}, "tuning.json")
                run.set_tags({"tune.chosen": label})
            else:
                model = train(prepared, cfg, run, checkpoint, resume=earlier is not None)
        checkpoint.write_info(status="trained")
        champion_before = registry.champion_version(cfg.registry.model_name)
        with clock("evaluate"):
            gate_data, gate_test = fair_gate_data(prepared, cfg, champion_before)
            candidate_local, baseline, components = evaluate(model, prepared, gate_data, cfg)
        run.log_metrics(candidate_local.metrics)
        run.log_metrics({f"popularity_{k}": v for k, v in baseline.metrics.items()})
        run.log_metrics({f"{name}_{k}": v for name, metrics in components.items() for k, v in metrics.items()})
        with clock("log-model"):
            model_uri = log_candidate(model, prepared, checked, cfg)
        with clock("gate"):
            candidate = score_served(model_uri, gate_data, cfg)
            champion = None
            unloadable = pipeline.champion_error(cfg, champion_before)
            if unloadable is not None:
                logger.warning("champion version %s cannot be loaded: %s", champion_before, unloadable)
            elif champion_before is not None:
                champion = score_served(registry.version_uri(cfg.registry.model_name, champion_before), gate_data,
                                        cfg)
            decision = gate(candidate, champion, baseline, cfg, unloadable)
        create_markdown_artifact(key="genrec-gate-decision", markdown=decision_markdown(decision.as_dict(), gate_test),
                                 description=f"genrec gate decision, run {stamp}")
        tags = {
            "metrics": _round(candidate_local.metrics),
            "decision": decision.as_dict(),
            "data_fingerprint": prepared.fingerprint,
            "flow_run_id": flow_run_id or "",
            "model_family": pipeline.family_label(cfg, model),
            "champion_at_gate": champion_before or "",
            "promotion": {"status": "pending"} if decision.promote else {
                "status": "not promoted", "reason": "the gate did not pass"},
        }
        with clock("register"):
            version = register(model_uri, tags, cfg)
        crash_point("flow:registered")
        reasons = list(decision.reasons)
        approval = None
        if decision.promote and cfg.gate.require_approval:
            approval = ask_approval(version, cfg, flow_run_id)
            reasons.append(approval.sentence())
        if decision.promote and (approval is None or approval.approved):
            actor = f"flow-run {flow_run_id}" + (f", approved by {approval.actor}" if approval else "")
            champion_now = promote(version, reasons, cfg, actor, champion_before)
        else:
            champion_now = registry.champion_version(cfg.registry.model_name)
        if decision.promote:
            registry.set_version_tags(cfg.registry.model_name, version, {"promotion": {"status": "promoted"} if
                                      champion_now == version else {"status": "not promoted", "reason": (
                                          approval.sentence() if approval is not None and not approval.approved
                                          else f"champion moved to {champion_now} since the gate compared against "
                                               f"{champion_before}")}})
        run.set_tags({"registered_version": version, "gate_promote": decision.promote})
    except BaseException:
        registry.end_run("FAILED")
        if checkpoint.info().get("status") == "training":
            checkpoint.write_info(status="failed")
        raise
    registry.end_run()
    pipeline.prune_checkpoints(cfg.train.keep_checkpoints, checkpoint, logger)

    result = {
        "status": "promoted" if champion_now == version else "not_promoted",
        "model_name": cfg.registry.model_name,
        "model_version": version,
        "champion_version": champion_now,
        "metrics": _round(candidate.metrics),
        "champion_metrics": _round(champion.metrics) if champion is not None else None,
        "test_metrics": _round(candidate_local.metrics),
        "baseline_metrics": _round(baseline.metrics),
        "component_metrics": {name: _round(metrics) for name, metrics in components.items()},
        "decision": decision.as_dict() | {"reasons": reasons,
                                          "approval": approval.as_dict() if approval is not None else None},
        "gate_test": gate_test,
        "data_docs": str(validator.index),
        "mlflow_run_id": run.run_id,
        "flow_run_id": flow_run_id,
        "data_fingerprint": prepared.fingerprint,
        "dataset": prepared.stats,
        "cleaning": checked.cleaning,
        "attributes": attributes,
        "drift": [c.as_dict() for c in checked.drift.checks],
        "resumed_from": resumed_from,
        "closed_runs": closed_runs,
        "tuning": {"candidates": tuned["candidates"], "chosen": label} if grid else None,
        "stages": clock.stages,
    }
    create_markdown_artifact(
        key="genrec-training-report",
        markdown=run_markdown(result | {"validation": checked.outcomes}),
        description=f"genrec training run {stamp}",
    )
    return result
