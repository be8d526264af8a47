"""The training flow: validate -> preprocess -> train -> evaluate -> gate -> register -> [approve] -> promote.

Each stage is a task around one library call; the flow only wires them, logs and publishes the
report. Rejected data raises `DataError` before anything is trained or registered, so the champion
is untouched; registration is the last step, so a crash before it leaves the registry as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.approval import Approval, wait_for_approval
from genrec import data as gdata
from genrec import preprocessing, registry
from genrec.config import Config, load_config
from genrec import drift, validation
from genrec.drift import DataProfile, DriftCheck
from genrec.fair import TrainingReference, fair_test
from genrec.errors import DataError
from genrec.evaluation import EvalResult, evaluate_scores
from genrec.gating import Decision, decide
from genrec.models import Recommender, make_model, require_servable
from genrec.models.pop import Popularity
from genrec.paths import data_docs_dir, datasets_dir, genrec_home, run_stamp
from genrec.preprocessing import PreparedData
from genrec.reporting import decision_markdown, run_markdown, training_curves
from genrec.serving import ServingBundle, check_served, evaluate_served, example_request
from genrec.validation import DataValidator, ValidationReport, raw_suite_name

TASK = dict(cache_policy=NO_CACHE, persist_result=False)


def _reject(report: ValidationReport, path: Path) -> DataError:
    return DataError(f"{path}: data rejected by validation: {report.summary()}.", data_docs=str(report.data_docs),
                     outcomes=[o.__dict__ for o in report.outcomes])


@task(name="validate-raw", **TASK)
def validate_raw(path: Path, cfg: Config, validator: DataValidator) -> tuple[gdata.RawData, ValidationReport]:
    raw = gdata.read_raw(path, cfg.data.format, cfg.data)
    report = validator.validate(raw.frame, raw_suite_name(raw.format))
    if not report.success:
        raise _reject(report, path)
    return raw, report


@task(name="validate-item-attributes", **TASK)
def validate_items(raw: gdata.RawData, cfg: Config, validator: DataValidator) -> ValidationReport | None:
    report = validation.validate_item_attributes(validator, raw)
    if report is not None and not report.success:
        if cfg.validation.reject_bad_item_attributes:
            raise _reject(report, raw.path)
        get_run_logger().warning("item attributes: %s", report.summary())
    return report


@task(name="clean", **TASK)
def clean(raw: gdata.RawData, cfg: Config) -> tuple[pd.DataFrame, dict[str, int]]:
    interactions, cleaning = gdata.to_interactions(raw)
    implicit = preprocessing.to_implicit(interactions, cfg.data, cfg.prepare)
    return implicit, cleaning.as_dict() | {"implicit_pairs": len(implicit)}


@task(name="validate-prepared", **TASK)
def validate_prepared(implicit: pd.DataFrame, cfg: Config, validator: DataValidator, path: Path) -> ValidationReport:
    report = validation.validate_prepared(validator, implicit, cfg.validation)
    if not report.success:
        raise _reject(report, path)
    return report


@task(name="check-drift", **TASK)
def check_drift(
    implicit: pd.DataFrame, cfg: Config, validator: DataValidator, path: Path
) -> tuple[DataProfile, list[DriftCheck]]:
    """Compare the prepared data with the champion's training data; reject if configured so."""
    logger = get_run_logger()
    profile, checks, report, champion = drift.against_champion(implicit, cfg, validator)
    if report is None:
        logger.info("no champion data profile to measure drift against")
        return profile, []
    for c in checks:
        if not c.passed:
            logger.warning("drift against champion %s: %s %.4f > %.4f (%s)", champion, c.metric, c.value,
                           c.threshold, c.action)
    reason = drift.rejection(checks)
    if reason:
        raise DataError(f"{path}: data rejected for drift against champion version {champion}'s training data: "
                        f"{reason}.", data_docs=str(report.data_docs), outcomes=[o.__dict__ for o in report.outcomes])
    return profile, checks


@task(name="prepare", **TASK)
def prepare(implicit: pd.DataFrame, cfg: Config) -> PreparedData:
    prepared = preprocessing.prepare(implicit, cfg.prepare)
    prepared.save(datasets_dir(prepared.fingerprint))
    return prepared


@task(name="train", **TASK)
def train(data: PreparedData, cfg: Config, run: registry.TrainingRun, checkpoint: Path) -> Recommender:
    logger = get_run_logger()

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        run.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)
        logger.debug("epoch %d: %s", epoch, record)

    model = make_model(cfg.model, progress=cfg.progress).fit(data.train, data.validation, on_epoch=on_epoch)
    run.log_params({f"chosen.{k}": v for k, v in model.chosen_params_.items()})  # what validation chose
    logger.info("chosen on validation: %s", model.chosen_params_)
    if getattr(model, "history_", None):
        run.log_figure(training_curves(model.history_), "training_curves.png")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        model.save_checkpoint(checkpoint, config=cfg.to_dict(), data_fingerprint=data.fingerprint)
        logger.info("trained %d epochs; best epoch %d with validation ndcg@20 %.4f",
                    len(model.history_), model.best_epoch_, model.best_score_)
    return model


@task(name="evaluate", **TASK)
def evaluate(model: Recommender, data: PreparedData, gate_data: PreparedData, cfg: Config) -> tuple[EvalResult, EvalResult]:
    """The candidate on the whole test split, and the popularity baseline on the gate's test split."""
    ks = cfg.eval.ks
    candidate = evaluate_scores(lambda u: model.score_known(data.known, u), data.known, data.test, ks)
    baseline_model = Popularity().fit(data.train)
    baseline = evaluate_scores(baseline_model.score, gate_data.known, gate_data.test, ks)
    return candidate, baseline


@task(name="log-candidate", **TASK)
def log_candidate(model: Recommender, data: PreparedData, profile: DataProfile) -> str:
    bundle = ServingBundle.build(model, data)
    registry.log_reference(profile, TrainingReference.of(data))
    return registry.log_model(bundle, example_request(bundle))


@task(name="score-served", **TASK)
def score_served(model_uri: str, data: PreparedData, cfg: Config) -> EvalResult:
    """Load a model back as a server would, answer its input example, then score the test users."""
    served = registry.load_model(model_uri)
    check_served(served)
    return evaluate_served(served, data, cfg.eval.ks)


@task(name="fair-test", **TASK)
def fair_gate_data(data: PreparedData, cfg: Config, champion: str | None) -> tuple[PreparedData, dict[str, Any]]:
    """The test split both models are compared on: all of it for a first model; for a champion,
    only what it cannot have trained on."""

    def whole(why: str) -> tuple[PreparedData, dict[str, Any]]:
        return data, {"rule": f"the whole test split ({why})", "interactions": int(data.test.nnz), "removed": 0,
                      "users": int((np.diff(data.test.indptr) > 0).sum())}

    if champion is None:
        return whole("no champion yet")
    reference = registry.load_training_reference(cfg.registry.model_name, champion)
    if reference is None:
        get_run_logger().warning("champion %s has no training reference; comparing on the whole test split", champion)
        return whole("the champion logged no training data")
    fair, info = fair_test(data, reference)
    get_run_logger().info("gate test: %s (%d interactions, %d removed)", info["rule"], info["interactions"],
                          info["removed"])
    return fair, info


@task(name="gate", **TASK)
def gate(candidate: EvalResult, champion: EvalResult | None, baseline: EvalResult, cfg: Config) -> Decision:
    metric = cfg.eval.primary_metric
    paired = None
    if champion is not None and np.array_equal(candidate.users, champion.users):  # the same gate test users
        paired = (candidate.per_user[metric], champion.per_user[metric])
    return decide(
        candidate.metrics,
        champion.metrics if champion is not None else None,
        baseline.metrics,
        metric,
        cfg.gate,
        paired=paired,
    )


@task(name="register", **TASK)
def register(model_uri: str, tags: dict[str, Any], cfg: Config) -> str:
    """Register the candidate (it becomes `challenger`); promotion is a separate step."""
    return registry.register(model_uri, cfg.registry.model_name, tags)


@task(name="promote", **TASK)
def promote(version: str, reasons: list[str], cfg: Config, actor: str, champion_at_gate: str | None) -> str | None:
    """Move `champion` to `version`, but only over the champion the gate compared it with."""
    name = cfg.registry.model_name
    try:
        registry.move_champion(name, version, reason="gate: " + "; ".join(reasons), actor=actor,
                               expected_from=champion_at_gate)
    except registry.ChampionMoved as exc:
        get_run_logger().warning("not promoted: %s since the gate compared against it", exc)
    return registry.champion_version(name)


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
) -> dict[str, Any]:
    """Train, evaluate, gate and register a recommender on `data` (default: the bundled sample)."""
    logger = get_run_logger()
    cfg = load_config(config, list(overrides or []) + ([f"data.format={format}"] if format != "auto" else []))
    require_servable(cfg.model)
    path = Path(data) if data else gdata.bundled_sample()
    stamp = run_stamp()
    flow_run_id = str(flow_run.id) if flow_run.id else None
    validator = DataValidator(data_docs_dir(stamp))
    logger.info("validating %s (Data Docs: %s)", path, validator.index)

    try:
        raw, raw_report = validate_raw(path, cfg, validator)
        items_report = validate_items(raw, cfg, validator)
        implicit, cleaning = clean(raw, cfg)
        prepared_report = validate_prepared(implicit, cfg, validator, path)
        profile, drift_checks = check_drift(implicit, cfg, validator, path)
    except DataError as exc:
        exc.data_docs = exc.data_docs or str(validator.index)
        create_markdown_artifact(
            key="genrec-training-report",
            markdown=run_markdown({"status": "data_rejected", "message": str(exc), "validation": exc.outcomes,
                                   "data_docs": exc.data_docs}),
            description=f"genrec training run {stamp}: data rejected",
        )
        raise
    prepared = prepare(implicit, cfg)
    reports = [raw_report, items_report, prepared_report]
    outcomes = [o.__dict__ for r in reports if r is not None for o in r.outcomes]

    run = registry.start_run(cfg.registry.experiment, run_name=f"train-{stamp}")
    try:
        run.log_params(cfg.flat())
        run.set_tags({"data_path": path, "data_fingerprint": prepared.fingerprint, "flow_run_id": flow_run_id})
        run.log_dict({"cleaning": cleaning, "prepared": prepared.stats, "validation": outcomes,
                      "drift": [c.as_dict() for c in drift_checks]}, "data_quality.json")
        model = train(prepared, cfg, run, genrec_home() / "checkpoints" / stamp / "checkpoint.pt")
        champion_before = registry.champion_version(cfg.registry.model_name)
        gate_data, gate_test = fair_gate_data(prepared, cfg, champion_before)
        candidate_local, baseline = evaluate(model, prepared, gate_data, cfg)
        run.log_metrics(candidate_local.metrics)
        run.log_metrics({f"popularity_{k}": v for k, v in baseline.metrics.items()})
        model_uri = log_candidate(model, prepared, profile)
        candidate = score_served(model_uri, gate_data, cfg)
        champion = None
        if champion_before is not None:
            champion = score_served(registry.version_uri(cfg.registry.model_name, champion_before), gate_data, cfg)
        decision = gate(candidate, champion, baseline, cfg)
        create_markdown_artifact(key="genrec-gate-decision", markdown=decision_markdown(decision.as_dict(), gate_test),
                                 description=f"genrec gate decision, run {stamp}")
        tags = {
            "metrics": _round(candidate_local.metrics),
            "decision": decision.as_dict(),
            "data_fingerprint": prepared.fingerprint,
            "flow_run_id": flow_run_id or "",
            "model_family": cfg.model.name,
            "champion_at_gate": champion_before or "",
        }
        version = register(model_uri, tags, cfg)
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
        run.set_tags({"registered_version": version, "gate_promote": decision.promote})
    except BaseException:
        registry.end_run("FAILED")
        raise
    registry.end_run()

    result = {
        "status": "promoted" if champion_now == version else "not_promoted",
        "model_name": cfg.registry.model_name,
        "model_version": version,
        "champion_version": champion_now,
        "metrics": _round(candidate.metrics),
        "champion_metrics": _round(champion.metrics) if champion is not None else None,
        "test_metrics": _round(candidate_local.metrics),
        "baseline_metrics": _round(baseline.metrics),
        "decision": decision.as_dict() | {"reasons": reasons,
                                          "approval": approval.as_dict() if approval is not None else None},
        "gate_test": gate_test,
        "data_docs": str(validator.index),
        "mlflow_run_id": run.run_id,
        "flow_run_id": flow_run_id,
        "data_fingerprint": prepared.fingerprint,
        "dataset": prepared.stats,
        "cleaning": cleaning,
        "drift": [c.as_dict() for c in drift_checks],
    }
    create_markdown_artifact(
        key="genrec-training-report",
        markdown=run_markdown(result | {"validation": outcomes}),
        description=f"genrec training run {stamp}",
    )
    return result
