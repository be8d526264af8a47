"""The `genrec` command line (SPEC's contract: commands, JSON, exit codes).

Exit codes: 0 done; 1 unexpected failure; 2 usage error; 3 input data rejected; 4 model, version
or alias not found. Errors are one sentence on stderr; `--debug` adds the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from genrec.errors import DataError, GenrecError, NotFoundError, UsageError
from genrec.paths import environment_defaults

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train, gate, register and serve GAN recommenders.")
out = Console()
err = Console(stderr=True)
STATE = {"debug": False}


def _emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def guarded(fn: Callable) -> Callable:
    """Map genrec's exceptions to SPEC's exit codes with one clear sentence on stderr."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except GenrecError as exc:
            if STATE["debug"]:
                traceback.print_exc()
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if STATE["debug"]:
                traceback.print_exc()
            err.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {escape(str(exc))} "
                      "(rerun with --debug for the traceback)",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    STATE["debug"] = debug or bool(os.environ.get("GENREC_DEBUG"))
    lib = logging.getLogger("genrec")
    if not any(isinstance(h, _StderrHandler) for h in lib.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        lib.addHandler(handler)
    lib.setLevel(logging.DEBUG if STATE["debug"] else logging.WARNING)
    if not STATE["debug"]:
        for noisy in ("great_expectations", "mlflow", "alembic", "urllib3", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _ExpectedErrors(logging.Filter):
    """Drop the traceback from log records of genrec's own expected errors (bad data and the
    like): the sentence says what is wrong; `--debug` keeps the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], GenrecError) and not STATE["debug"]:
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_expected_tracebacks() -> None:
    for name in ("prefect", "prefect.task_runs", "prefect.flow_runs", ""):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _ExpectedErrors) for f in handler.filters):
                handler.addFilter(_ExpectedErrors())


# --- run -----------------------------------------------------------------------------------------


@app.command()
@guarded
def run(
    data: Optional[Path] = typer.Option(None, "--data", help="Input file (default: the bundled Online Retail sample)."),
    fmt: str = typer.Option("auto", "--format", help="Input format (SPEC), or auto."),
    config: str = typer.Option("default", "--config", help="Preset (tiny, default) or a TOML/JSON file."),
    overrides: list[str] = typer.Option([], "--set", help="Override one config field, e.g. model.epochs=50."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The training flow: validate, preprocess, train, evaluate, gate, register; promote if the gate passes."""
    from genrec.config import load_config

    from genrec.models import require_servable

    require_servable(load_config(config, overrides).model)  # usage errors before the flow starts
    if data is not None:
        from genrec.data import check_path

        check_path(data)
    from flows.training import train_flow

    _quiet_expected_tracebacks()
    state = train_flow(data=str(data) if data else None, format=fmt, config=config, overrides=list(overrides),
                       return_state=True)
    flow_run_id = str(state.state_details.flow_run_id) if state.state_details else None
    result = state.result(raise_on_failure=False)
    if isinstance(result, DataError):
        payload = {
            "status": "data_rejected", "model_name": None, "model_version": None, "champion_version": None,
            "metrics": {}, "champion_metrics": None, "decision": {"promote": False, "reasons": [str(result)]},
            "data_docs": result.data_docs, "mlflow_run_id": None, "flow_run_id": flow_run_id,
        }
        if as_json:
            _emit_json(payload)
        err.print(f"[bold red]data rejected:[/] {escape(str(result))}", highlight=False, soft_wrap=True)
        if result.data_docs:
            err.print(f"Data Docs: {result.data_docs}", highlight=False, soft_wrap=True)
        raise typer.Exit(3)
    if isinstance(result, BaseException):
        raise result
    if as_json:
        _emit_json(result)
        return
    _print_run(result)


def _print_run(result: dict[str, Any]) -> None:
    from genrec.paths import tracking_uri

    colour = "green" if result["status"] == "promoted" else "yellow"
    out.print(f"[bold {colour}]{result['status']}[/]: {result['model_name']} version {result['model_version']}; "
              f"champion is version {result['champion_version']}")
    table = Table("metric", "candidate", "champion", "popularity")
    champion = result.get("champion_metrics") or {}
    baseline = result.get("baseline_metrics") or {}
    for name, value in result["metrics"].items():
        table.add_row(name, f"{value:.4f}", *(f"{d[name]:.4f}" if name in d else "—" for d in (champion, baseline)))
    out.print(table)
    verdict = "promote" if result["decision"]["promote"] else (
        "keep the champion" if result.get("champion_metrics") else "do not promote (no champion yet)")
    out.print(f"Gate: [bold]{verdict}[/]")
    for reason in result["decision"]["reasons"]:
        out.print(f"  - {escape(reason)}", highlight=False)
    out.print(f"Data Docs:   {result['data_docs']}", highlight=False, soft_wrap=True)
    out.print(f"MLflow:      {tracking_uri()} (run {result['mlflow_run_id']})", highlight=False, soft_wrap=True)
    out.print(f"Prefect run: {result['flow_run_id']}", highlight=False)


# --- validate ------------------------------------------------------------------------------------


@app.command()
@guarded
def validate(
    path: Path = typer.Argument(..., help="Input file."),
    fmt: str = typer.Option("auto", "--format", help="Input format (SPEC), or auto."),
    config: str = typer.Option("default", "--config"),
    overrides: list[str] = typer.Option([], "--set"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The data-quality checks alone; writes Data Docs and prints where."""
    from genrec import data as gdata
    from genrec import preprocessing
    from genrec.config import load_config
    from genrec.paths import data_docs_dir, run_stamp
    from genrec.validation import DataValidator, raw_suite_name, validate_item_attributes, validate_prepared

    cfg = load_config(config, list(overrides) + ([f"data.format={fmt}"] if fmt != "auto" else []))
    raw = gdata.read_raw(path, cfg.data.format, cfg.data)
    validator = DataValidator(data_docs_dir(run_stamp()))
    reports = [validator.validate(raw.frame, raw_suite_name(raw.format))]
    items_report = validate_item_attributes(validator, raw)
    if items_report is not None:
        reports.append(items_report)
    cleaning = None
    drift_checks = []
    if reports[0].success:
        interactions, report = gdata.to_interactions(raw)
        cleaning = report.as_dict()
        implicit = preprocessing.to_implicit(interactions, cfg.data, cfg.prepare)
        reports.append(validate_prepared(validator, implicit, cfg.validation))
        drift_checks = _drift_against_champion(implicit, cfg, validator, reports)
    from genrec import drift

    drift_reason = drift.rejection(drift_checks)
    warn_only = {"drift"}  # drift rejects through drift_reason, only for the checks configured to
    if items_report is not None and not cfg.validation.reject_bad_item_attributes:
        warn_only.add(items_report.suite)
    success = all(r.success for r in reports if r.suite not in warn_only) and drift_reason is None
    if as_json:
        _emit_json({"path": str(path), "format": raw.format, "success": success, "data_docs": str(validator.index),
                    "cleaning": cleaning, "drift": [c.as_dict() for c in drift_checks],
                    "expectations": [o.__dict__ for r in reports for o in r.outcomes]})
    else:
        table = Table("suite", "expectation", "column", "result", "observed / unexpected", "threshold", title=str(path))
        for r in reports:
            for o in r.outcomes:
                seen = f"{o.unexpected_count} rows, e.g. {o.examples[:2]}" if o.unexpected_count else (
                    "" if o.observed is None else str(o.observed))
                table.add_row(o.suite, o.expectation.removeprefix("expect_"), escape(o.column or ""),
                              "[green]pass[/]" if o.success else "[bold red]FAIL[/]", escape(seen), escape(o.threshold))
        out.print(table)
        if cleaning:
            out.print("Cleaning: " + ", ".join(f"{k} {v}" for k, v in cleaning.items()), highlight=False)
        out.print(f"Data Docs: {validator.index}", highlight=False, soft_wrap=True)
    if not success:
        if drift_reason:
            raise DataError(f"{path}: data rejected for drift against the champion's training data: {drift_reason}.",
                            data_docs=str(validator.index))
        failed = next(r for r in reports if not r.success and r.suite not in warn_only)
        raise DataError(f"{path}: data rejected by validation: {failed.summary()}.", data_docs=str(validator.index))


def _drift_against_champion(implicit, cfg, validator, reports: list) -> list:
    """Drift checks against the champion's training data, if there is a champion with a profile."""
    from genrec import drift

    _, checks, report, _ = drift.against_champion(implicit, cfg, validator)
    if report is not None:
        reports.append(report)
    return checks


# --- evaluate ------------------------------------------------------------------------------------


@app.command()
@guarded
def evaluate(
    train: Path = typer.Option(..., "--train", help="Training interactions."),
    test: Path = typer.Option(..., "--test", help="Test interactions."),
    fmt: str = typer.Option("auto", "--format"),
    model: Optional[str] = typer.Option(None, "--model", help="Model family to fit: cfgan, pop."),
    model_uri: Optional[str] = typer.Option(None, "--model-uri", help="A registered model, e.g. models:/genrec@champion."),
    config: str = typer.Option("default", "--config"),
    overrides: list[str] = typer.Option([], "--set"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fit a model family on --train (or load a registered model), then score it on --test."""
    from genrec import data as gdata
    from genrec.config import load_config
    from genrec.evaluation import evaluate_scores
    from genrec.models import make_model
    from genrec.preprocessing import from_split

    if (model is None) == (model_uri is None):
        raise UsageError("Give exactly one of --model NAME or --model-uri URI.")
    sets = list(overrides) + ([f"model.name={model}"] if model else [])
    cfg = load_config(config, sets)
    data = from_split(gdata.load_interactions(train, fmt, cfg.data), gdata.load_interactions(test, fmt, cfg.data),
                      cfg.prepare)
    start = time.perf_counter()
    if model_uri:
        from genrec.serving import evaluate_served

        served = _load_served(model_uri)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_served(served, data, cfg.eval.ks)
        name = model_uri
        chosen = {}
    else:
        fitted = make_model(cfg.model, progress=cfg.progress).fit(data.train, data.validation)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        known = data.known
        result = evaluate_scores(lambda u: fitted.score_known(known, u), known, data.test, cfg.eval.ks)
        name = cfg.model.name
        chosen = fitted.chosen_params_
    payload = {
        "model": name,
        "users": int(len(result.users)),
        "items": int(data.n_items),
        "metrics": {k: round(v, 6) for k, v in result.metrics.items()},
        "fit_seconds": round(fit_seconds, 3),
        "eval_seconds": round(time.perf_counter() - start, 3),
        "chosen_on_validation": chosen,
    }
    if as_json:
        _emit_json(payload)
        return
    table = Table("metric", name)
    for k, v in payload["metrics"].items():
        table.add_row(k, f"{v:.4f}")
    out.print(table)
    out.print(f"{payload['users']} test users, {payload['items']} items; fit {payload['fit_seconds']} s, "
              f"evaluation {payload['eval_seconds']} s", highlight=False)


def _load_served(model_uri: str):
    from mlflow.exceptions import MlflowException

    from genrec import registry

    try:
        return registry.load_model(model_uri)
    except MlflowException as exc:
        raise NotFoundError(f"Cannot load model {model_uri!r}: {exc.message}") from None


# --- registry commands ---------------------------------------------------------------------------


def _model_name(config: str = "default") -> str:
    from genrec.config import load_config

    return load_config(config).registry.model_name


@app.command()
@guarded
def models(as_json: bool = typer.Option(False, "--json")) -> None:
    """Registered versions: aliases, key metrics, gate decision, dataset fingerprint."""
    from genrec import registry

    name = _model_name()
    versions = registry.list_versions(name)
    champion = next((v["version"] for v in versions if "champion" in v["aliases"]), None)
    if as_json:
        _emit_json({"model_name": name, "champion": champion, "versions": versions})
        return
    table = Table("version", "aliases", "ndcg@20", "precision@5", "gate", "data", "created", title=name)
    for v in versions:
        m = v["metrics"] or {}
        gate = v["decision"].get("promote") if isinstance(v["decision"], dict) else None
        verdict = {True: "promote", False: "keep champion", None: "—"}[gate]
        if isinstance(v.get("approval"), dict):
            verdict += f" ({v['approval'].get('status')})"
        table.add_row(v["version"], ", ".join(v["aliases"]), _num(m.get("ndcg@20")), _num(m.get("precision@5")),
                      verdict, v["data_fingerprint"] or "", v["created"])
    out.print(table)
    if not versions:
        out.print(f"No versions of {name!r} yet: run `genrec run` first.")


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"


def _actor(command: str) -> str:
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return f"genrec {command} (user {user})"


@app.command()
@guarded
def promote(
    version: str = typer.Argument(..., help="Version to make champion."),
    reason: str = typer.Option("manual promotion", "--reason"),
) -> None:
    """Point `champion` at VERSION."""
    from genrec import registry

    event = registry.move_champion(_model_name(), version, reason=reason, actor=_actor("promote"))
    out.print(f"champion: {event['from_version']} -> {event['to_version']}", highlight=False)


def _answer(run: str, approve: bool, reason: str, command: str) -> None:
    from flows.approval import answer

    answer(run, approve=approve, reason=reason, actor=_actor(command))
    verdict = "approved" if approve else "rejected"
    out.print(f"training run {run}: {verdict}; it resumes within its poll interval and records the answer",
              highlight=False)


@app.command()
@guarded
def approve(
    run: str = typer.Argument(..., help="Id of the training flow run that waits for approval (it logs it)."),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Approve the promotion a paused training run waits for (gate.require_approval)."""
    _answer(run, True, reason, "approve")


@app.command()
@guarded
def reject(
    run: str = typer.Argument(..., help="Id of the training flow run that waits for approval (it logs it)."),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Reject it: the candidate stays registered, the champion stays where it is."""
    _answer(run, False, reason, "reject")


@app.command()
@guarded
def rollback(
    to: Optional[str] = typer.Option(None, "--to", help="Version to roll back to (default: the previous champion)."),
    reason: str = typer.Option("manual rollback", "--reason"),
) -> None:
    """Point `champion` back at the previous champion (or VERSION)."""
    from genrec import registry

    name = _model_name()
    current = registry.champion_version(name)
    if to is None:
        earlier = [e["from_version"] for e in registry.history(name) if e["to_version"] == current and e["from_version"]]
        if current is None or not earlier:
            raise NotFoundError(f"Model {name!r} has no earlier champion to roll back to.")
        to = earlier[-1]
    event = registry.move_champion(name, to, reason=reason, actor=_actor("rollback"))
    out.print(f"champion: {event['from_version']} -> {event['to_version']}", highlight=False)


@app.command()
@guarded
def history(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every move of `champion`: when, from, to, why, by which command or flow run."""
    from genrec import registry

    events = registry.history(_model_name())
    if as_json:
        _emit_json({"events": events})
        return
    table = Table("time", "from", "to", "reason", "actor")
    for e in events:
        table.add_row(e["time"], str(e["from_version"] or "—"), e["to_version"], e["reason"], e["actor"])
    out.print(table)


@app.command()
@guarded
def recommend(
    user: Optional[str] = typer.Option(None, "--user", help="A known user id."),
    history_ids: Optional[str] = typer.Option(None, "--history", help="Comma-separated item ids."),
    k: int = typer.Option(10, "-k", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Top-N items from the champion."""
    import pandas as pd

    if (user is None) == (history_ids is None):
        raise UsageError("Give exactly one of --user ID or --history ID,ID,...")
    name = _model_name()
    from genrec import registry

    if registry.champion_version(name) is None:
        raise NotFoundError(f"Model {name!r} has no champion yet: run `genrec run` or `genrec promote VERSION`.")
    served = _load_served(f"models:/{name}@champion")
    frame = pd.DataFrame({"user_id": [user or ""],
                          "history": [[h.strip() for h in (history_ids or "").split(",") if h.strip()]]})
    row = served.predict(frame, params={"k": k}).iloc[0]
    payload = {"user_id": row["user_id"], "items": list(row["items"]), "scores": [float(s) for s in row["scores"]]}
    if as_json:
        _emit_json(payload)
        return
    table = Table("rank", "item", "score")
    for i, (item, score) in enumerate(zip(payload["items"], payload["scores"]), 1):
        table.add_row(str(i), item, f"{score:.4f}")
    out.print(table)


@app.command()
@guarded
def batch(
    output: Optional[Path] = typer.Option(None, "--output", help="Parquet file (default: under GENREC_HOME/batch)."),
    k: int = typer.Option(10, "-k", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Top-N from the champion for every known user, written to Parquet (the batch flow)."""
    from flows.batch import batch_flow

    _quiet_expected_tracebacks()
    state = batch_flow(output=str(output) if output else None, k=k, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if as_json:
        _emit_json(result)
        return
    out.print(f"{result['users']} users' top-{k} from {result['model_name']} version {result['model_version']} "
              f"-> {result['path']} ({result['users_per_second']} users/s)", highlight=False, soft_wrap=True)


@app.command()
@guarded
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(5001, "--port"),
) -> None:
    """The champion behind an HTTP endpoint (MLflow's scoring server)."""
    from genrec import registry
    from genrec.paths import tracking_uri

    name = _model_name()
    if registry.champion_version(name) is None:
        raise NotFoundError(f"Model {name!r} has no champion to serve: run `genrec run` first.")
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri(), PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    cmd = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion",
           "--env-manager", "local", "--host", host, "--port", str(port)]
    err.print(f"serving models:/{name}@champion on http://{host}:{port}/invocations", highlight=False)
    os.execvpe(cmd[0], cmd, env)


@app.command()
@guarded
def deploy(
    serve_now: bool = typer.Option(False, "--serve", help="Also run the scheduled deployments in this process."),
) -> None:
    """Register the Prefect deployments (schedules included) with the Prefect API in use."""
    from flows.deployments import apply_deployments, load_deployments

    deployments = load_deployments()
    ids = apply_deployments(deployments)
    for d, dep_id in zip(deployments, ids):
        crons = ", ".join(f"cron {s.schedule.cron!r} ({s.schedule.timezone})" for s in d.schedules)
        out.print(f"deployment {d.flow_name}/{d.name} ({dep_id}): {crons}", highlight=False)
    if serve_now:
        from prefect import serve as prefect_serve

        prefect_serve(*deployments)


def main() -> None:
    for key, value in environment_defaults().items():
        os.environ.setdefault(key, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    app()


if __name__ == "__main__":
    main()
