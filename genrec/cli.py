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


def _disk_full(exc: BaseException) -> str | None:
    """The sentence for an exception caused by a full disk (however deep in its chain), else None."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            where = f" writing {exc.filename}" if exc.filename else ""
            return f"No space left on the device{where} (GENREC_HOME is {os.environ.get('GENREC_HOME')}): free some and run again."
        if "database or disk is full" in str(exc) or "No space left on device" in str(exc):
            return (f"No space left on the device (GENREC_HOME is {os.environ.get('GENREC_HOME')}): "
                    "free some and run again.")
        exc = exc.__cause__ or exc.__context__
    return None


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
            if isinstance(exc, DataError) and exc.data_docs:
                err.print(f"Data Docs: {exc.data_docs}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if STATE["debug"]:
                traceback.print_exc()
            full = _disk_full(exc)  # a full disk reaches here wrapped in many ways
            if full is not None:
                err.print(f"[bold red]error:[/] {escape(full)}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            err.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {escape(str(exc))} "
                      "(rerun with --debug for the traceback)",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def _main(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    STATE["debug"] = debug or bool(os.environ.get("GENREC_DEBUG"))
    guarded(_preflight)(ctx.invoked_subcommand)
    lib = logging.getLogger("genrec")
    if not any(isinstance(h, _StderrHandler) for h in lib.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        lib.addHandler(handler)
    lib.setLevel(logging.DEBUG if STATE["debug"] else logging.WARNING)
    if not STATE["debug"]:
        for noisy in ("great_expectations", "mlflow", "alembic", "urllib3", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


def _preflight(command: str | None) -> None:
    from genrec import preflight

    preflight.check(command)


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
    like) and of a full disk, also where a library wrote it into the message: the sentence says
    what is wrong; `--debug` keeps the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if STATE["debug"]:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, GenrecError) or _disk_full(exc) is not None):
            record.exc_info = None
            record.exc_text = None
        elif exc is None and "Traceback" in str(record.msg):
            message = record.getMessage()
            if _disk_full(Exception(message)) is not None:  # Great Expectations' Data Docs errors
                record.msg, record.args = message.split("Traceback", 1)[0].rstrip(' :".'), None
        return True


def _quiet_expected_tracebacks() -> None:
    import mlflow  # noqa: F401 - MLflow's own handler (it does not propagate) exists once it is imported

    for name in ("prefect", "prefect.task_runs", "prefect.flow_runs", "", "mlflow"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, _ExpectedErrors) for f in handler.filters):
                handler.addFilter(_ExpectedErrors())


def _start_prefect_server() -> None:
    """Start Prefect's temporary server (where no PREFECT_API_URL is set) under a lock on PREFECT_HOME:
    a starting server migrates its SQLite database, and two first runs at once race in that."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return
    from filelock import FileLock
    from prefect.server.api.server import SubprocessASGIServer

    with FileLock(str(Path(os.environ["PREFECT_HOME"]) / "server.lock"), timeout=600):
        SubprocessASGIServer().start()  # the instance the flow's client then finds running


# --- run -----------------------------------------------------------------------------------------

CONFIG_HELP = "Preset (default, tiny, ...) or a TOML/JSON file."
SET_HELP = "Override one config field, e.g. train.epochs=50 or model.hidden_g=300."


def _config(config: str, overrides: list[str], fmt: str = "auto"):
    from genrec.config import load_config

    return load_config(config, list(overrides) + ([f"data.format={fmt}"] if fmt != "auto" else []))


@app.command()
@guarded
def run(
    data: Optional[Path] = typer.Option(None, "--data", help="Input file (default: the bundled Online Retail sample)."),
    fmt: str = typer.Option("auto", "--format", help="Input format (SPEC), or auto."),
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue the training of run RUN from its "
                                         "checkpoint (a folder under GENREC_HOME/checkpoints, or its MLflow run id)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The training flow: validate, preprocess, train, evaluate, gate, register; promote if the gate passes."""
    from genrec.pipeline import check_trainable, grid_configs, run_checkpoint

    cfg = _config(config, overrides, fmt)
    check_trainable(cfg, served=True)  # usage errors before the flow starts
    grid_configs(config, [*overrides, *([f"data.format={fmt}"] if fmt != "auto" else [])], cfg)
    if resume is not None:
        run_checkpoint(resume)
    if data is not None:
        from genrec.data import check_path

        check_path(data)
    from flows.training import train_flow

    _quiet_expected_tracebacks()
    _start_prefect_server()
    state = train_flow(data=str(data) if data else None, format=fmt, config=config, overrides=list(overrides),
                       resume=resume, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id) if state.state_details else None
    result = state.result(raise_on_failure=False)
    if isinstance(result, DataError):
        if as_json:
            _emit_json({
                "status": "data_rejected", "model_name": None, "model_version": None, "champion_version": None,
                "metrics": {}, "champion_metrics": None, "decision": {"promote": False, "reasons": [str(result)]},
                "data_docs": result.data_docs, "mlflow_run_id": None, "flow_run_id": flow_run_id,
            })
        raise result
    if isinstance(result, BaseException):
        raise result
    if as_json:
        _emit_json(result)
        return
    _print_run(result)


def _print_run(result: dict[str, Any]) -> None:
    from genrec.paths import redacted, tracking_uri

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
    out.print(f"MLflow:      {redacted(tracking_uri())} (run {result['mlflow_run_id']})", highlight=False, soft_wrap=True)
    out.print(f"Prefect run: {result['flow_run_id']}", highlight=False)


# --- validate ------------------------------------------------------------------------------------


@app.command()
@guarded
def validate(
    path: Path = typer.Argument(..., help="Input file."),
    fmt: str = typer.Option("auto", "--format", help="Input format (SPEC), or auto."),
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The data-quality checks alone (the training flow's, in its order); writes Data Docs and prints where."""
    from genrec import pipeline
    from genrec.paths import data_docs_dir, run_stamp
    from genrec.validation import DataValidator

    cfg = _config(config, overrides, fmt)
    validator = DataValidator(data_docs_dir(run_stamp()))
    reports: list = []
    checked = None
    try:
        checked = pipeline.validate(path, cfg, validator, reports)
    except DataError as exc:
        exc.data_docs = exc.data_docs or str(validator.index)
        _print_validation(path, None, reports, None, [], validator.index, as_json, success=False)
        raise
    _print_validation(path, checked.format, reports, checked.cleaning, checked.drift.checks, validator.index, as_json,
                      success=True)


def _print_validation(path: Path, fmt: str | None, reports: list, cleaning: dict | None, drift_checks: list, docs: Path,
                      as_json: bool, success: bool) -> None:
    if as_json:
        _emit_json({"path": str(path), "format": fmt, "success": success, "data_docs": str(docs), "cleaning": cleaning,
                    "drift": [c.as_dict() for c in drift_checks],
                    "expectations": [o.__dict__ for r in reports for o in r.outcomes]})
        return
    if reports:
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
    if success:
        out.print(f"Data Docs: {docs}", highlight=False, soft_wrap=True)


# --- evaluate ------------------------------------------------------------------------------------


@app.command()
@guarded
def evaluate(
    train: Optional[Path] = typer.Option(None, "--train", help="Training interactions."),
    test: Optional[Path] = typer.Option(None, "--test", help="Test interactions."),
    data_path: Optional[Path] = typer.Option(None, "--data", help="One log, split by --split (with --cutoff)."),
    split: Optional[str] = typer.Option(None, "--split", help="cold-start: train before --cutoff; score warm and "
                                        "cold items (first seen at or after it) apart."),
    cutoff: Optional[str] = typer.Option(None, "--cutoff", help="ISO date or time of the --split."),
    items: Optional[Path] = typer.Option(None, "--items", help="An item attribute table (u.item, movies.dat, "
                                         "movies.csv, or CSV/Parquet with item_id)."),
    fmt: str = typer.Option("auto", "--format"),
    model: Optional[str] = typer.Option(None, "--model", help="A model family to fit (`genrec/models/families.py` lists them)."),
    model_uri: Optional[str] = typer.Option(None, "--model-uri", help="A registered model, e.g. models:/genrec/3."),
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fit a model family on --train (or load a registered model), then score it on --test; or, with
    --data --split cold-start --cutoff DATE, score warm and cold items apart."""
    from genrec import pipeline
    from genrec.data import check_path

    if (model is None) == (model_uri is None):
        raise UsageError("Give exactly one of --model NAME or --model-uri URI.")
    given = [*([f"model.name={model}"] if model else []), *([f"data.items={items}"] if items else [])]
    if data_path is not None or split is not None:
        if train is not None or test is not None:
            raise UsageError("Give either --train and --test, or --data with --split.")
        if data_path is None or split != "cold-start" or cutoff is None or model is None:
            raise UsageError("A split of one log takes --data PATH --split cold-start --cutoff ISO-DATE --model NAME.")
        _evaluate_cold_start(data_path, cutoff, fmt, _config(config, [*given, *overrides], fmt), as_json)
        return
    if train is None or test is None:
        raise UsageError("Give --train and --test (or --data with --split).")
    cfg = _config(config, [*given, *overrides])
    if model:
        pipeline.check_trainable(cfg, served=False)
    for path in (train, test):
        check_path(path)
    data = pipeline.load_split(train, test, fmt, cfg)
    start = time.perf_counter()
    if model_uri:
        from genrec import registry
        from genrec.serving import evaluate_served

        served = registry.load_model(model_uri)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_served(served, data, cfg.eval.ks)
        name, chosen = model_uri, {}
    else:
        from genrec.training import FitOptions

        fitted = pipeline.train(data, cfg, FitOptions(progress=cfg.progress))
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = pipeline.evaluate(fitted, data, cfg)
        name, chosen = pipeline.family_label(cfg, fitted), fitted.chosen_params_
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


def _evaluate_cold_start(path: Path, cutoff: str, fmt: str, cfg, as_json: bool) -> None:
    """The data through the flow's own checks, split at `cutoff` by time; the model fitted on what
    came before; warm and cold items scored apart."""
    import dataclasses

    from genrec import pipeline
    from genrec.paths import data_docs_dir, run_stamp
    from genrec.training import FitOptions
    from genrec.validation import DataValidator

    try:
        prepare = dataclasses.replace(cfg.prepare, split="time", cutoff=cutoff)
    except ValueError as exc:
        raise UsageError(f"--cutoff: {exc}.") from None
    cfg = dataclasses.replace(cfg, prepare=prepare)
    pipeline.check_trainable(cfg, served=False)
    checked = pipeline.validate(path, cfg, DataValidator(data_docs_dir(run_stamp())))
    data = pipeline.prepare(checked, cfg)
    cold_items = len(data.cold_items)
    if cold_items == 0 or data.test.nnz == 0:
        raise UsageError(f"--cutoff {cutoff} leaves {data.test.nnz} test interactions and {cold_items} cold items "
                         f"in {path}: pick a date inside the log.")
    start = time.perf_counter()
    fitted = pipeline.train(data, cfg, FitOptions(progress=cfg.progress))
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    groups = pipeline.evaluate_cold_start(fitted, data, cfg)
    payload = {
        "model": pipeline.family_label(cfg, fitted),
        "warm": {k: round(v, 6) for k, v in groups["warm"].metrics.items()},
        "cold": {k: round(v, 6) for k, v in groups["cold"].metrics.items()},
        "warm_items": int(data.n_items - cold_items),
        "cold_items": cold_items,
        "cutoff": cutoff,
        "users": {group: int(len(result.users)) for group, result in groups.items()},
        "attributes": data.features.report(),
        "fit_seconds": round(fit_seconds, 3),
        "eval_seconds": round(time.perf_counter() - start, 3),
        "chosen_on_validation": fitted.chosen_params_,
    }
    if as_json:
        _emit_json(payload)
        return
    table = Table("metric", "warm items", "cold items")
    for k in payload["warm"]:
        table.add_row(k, f"{payload['warm'][k]:.4f}", f"{payload['cold'][k]:.4f}")
    out.print(table)
    out.print(f"{payload['warm_items']} warm items, {cold_items} cold (first seen at or after {cutoff}); "
              f"fit {payload['fit_seconds']} s", highlight=False)


# --- registry commands ---------------------------------------------------------------------------


def _model_name(config: str, overrides: list[str]) -> str:
    return _config(config, overrides).registry.model_name




@app.command()
@guarded
def models(
    as_json: bool = typer.Option(False, "--json"),
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Registered versions: aliases, key metrics, gate decision, dataset fingerprint."""
    from genrec import registry_view

    name = _model_name(config, overrides)
    versions = registry_view.list_versions(name)
    if versions is None:  # the view cannot say it alone: MLflow's client (which also repairs)
        from genrec import registry

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
        promotion = v.get("promotion") or {}
        if gate and promotion.get("status") == "not promoted":
            verdict += f"; not promoted: {promotion.get('reason')}"
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
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Point `champion` at VERSION."""
    from genrec import registry

    event = registry.move_champion(_model_name(config, overrides), version, reason=reason, actor=_actor("promote"))
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
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Point `champion` back at the previous champion (or VERSION)."""
    from genrec import registry

    name = _model_name(config, overrides)
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
def history(
    as_json: bool = typer.Option(False, "--json"),
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Every move of `champion`: when, from, to, why, by which command or flow run."""
    from genrec import registry_view

    name = _model_name(config, overrides)
    events = registry_view.history(name)
    if events is None:
        from genrec import registry

        events = registry.history(name)
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
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Top-N items from the champion."""
    import pandas as pd

    if (user is None) == (history_ids is None):
        raise UsageError("Give exactly one of --user ID or --history ID,ID,...")
    name = _model_name(config, overrides)
    from genrec import registry

    version = registry.champion_version(name)
    if version is None:
        raise NotFoundError(f"Model {name!r} has no champion yet: run `genrec run` or `genrec promote VERSION`.")
    served = registry.load_model(registry.version_uri(name, version))
    frame = pd.DataFrame({"user_id": [user or ""],
                          "history": [[h.strip() for h in (history_ids or "").split(",") if h.strip()]]})
    row = served.predict(frame, params={"k": k}).iloc[0]
    payload = {"user_id": row["user_id"], "items": list(row["items"]), "scores": [float(s) for s in row["scores"]],
               "names": list(row["names"]), "fallback": bool(row["fallback"])}
    if as_json:
        _emit_json(payload)
        return
    if payload["fallback"]:
        what = f"user {user!r} is not in the champion's data" if user is not None else "no item of the history is known"
        out.print(f"{what}: the most popular items instead (the popularity fallback).")
    named = any(n is not None for n in payload["names"])
    table = Table("rank", "item", *(["name"] if named else []), "score")
    for i, (item, name, score) in enumerate(zip(payload["items"], payload["names"], payload["scores"]), 1):
        table.add_row(str(i), item, *([name or ""] if named else []), f"{score:.4f}")
    out.print(table)


@app.command()
@guarded
def batch(
    output: Optional[Path] = typer.Option(None, "--output", help="Parquet file (default: under GENREC_HOME/batch)."),
    k: int = typer.Option(10, "-k", min=1),
    as_json: bool = typer.Option(False, "--json"),
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Top-N from the champion for every known user, written to Parquet (the batch flow)."""
    from flows.batch import batch_flow

    _quiet_expected_tracebacks()
    _start_prefect_server()
    state = batch_flow(output=str(output) if output else None, k=k, config=config, overrides=list(overrides),
                       return_state=True)
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
    config: str = typer.Option("default", "--config", help=CONFIG_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """The champion behind an HTTP endpoint (SPEC's requests, with the limits of `serving.*`)."""
    from genrec import registry, server

    cfg = _config(config, overrides)
    name = cfg.registry.model_name
    version = registry.champion_version(name)
    if version is None:
        raise NotFoundError(f"Model {name!r} has no champion to serve: run `genrec run` first.")
    model = registry.load_serving_model(registry.version_uri(name, version))  # a clear exit 4 before listening
    err.print(f"serving {name} version {version} (champion) on http://{host}:{port}/invocations", highlight=False)
    following = server.Following(server.Served(model, name, version), lambda: registry.champion_version(name),
                                 lambda v: registry.load_serving_model(registry.version_uri(name, v)),
                                 every=cfg.serving.reload_seconds)
    server.serve(following, cfg.serving, host, port)


@app.command()
@guarded
def deploy(
    pool: Optional[str] = typer.Option(None, "--pool", help="Work pool to deploy into (default: the one "
                                       "deploy/prefect.yaml names; created, type process, where missing)."),
    serve_now: bool = typer.Option(False, "--serve", help="Instead, run the deployments on their schedules in this "
                                   "process (no work pool or worker)."),
) -> None:
    """Register the Prefect deployments of deploy/prefect.yaml (schedules included) with the Prefect API in use."""
    from flows import deployments as deploying

    if serve_now and pool is not None:
        raise UsageError("Give --pool (a worker runs the deployments) or --serve (this process does), not both.")
    path = deploying.deploy_file()
    if not serve_now:
        pool = pool or deploying.default_pool(path)
        if deploying.ensure_process_pool(pool):
            out.print(f"work pool {pool!r} created (type process)", highlight=False)
    deployments = deploying.load_deployments(path, pool=None if serve_now else pool)
    ids = deploying.apply_deployments(deployments)
    for d, dep_id in zip(deployments, ids):
        crons = ", ".join(f"cron {s.schedule.cron!r} ({s.schedule.timezone})" for s in d.schedules)
        out.print(f"deployment {d.flow_name}/{d.name} ({dep_id}): {crons}", highlight=False, soft_wrap=True)
    if not serve_now:
        waiting = "" if deploying.workers_online(pool) else " No worker polls it now: start one with "
        out.print(f"Runs go to work pool {pool!r}." + (waiting and f"{waiting}`prefect worker start --pool {pool}` "
                  "(where genrec and this code are installed) or `genrec stack up`."), highlight=False, soft_wrap=True)
        return
    from prefect import serve as prefect_serve

    try:
        prefect_serve(*deployments)
    finally:
        names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments)
        err.print(f"Stopped serving: {names} stay registered but paused (no runs until `genrec deploy --serve` "
                  "runs again, or `genrec deploy` puts them in a work pool).", highlight=False, soft_wrap=True)


# --- stack ---------------------------------------------------------------------------------------

stack_app = typer.Typer(no_args_is_help=True, help="The team's servers on 127.0.0.1: Prefect server, work pool and "
                        "worker, MLflow tracking server on PostgreSQL (SQLite where it is not installed).")
app.add_typer(stack_app, name="stack")
STACK_DIR_HELP = "The stack's folder: its databases, artifacts, logs and state (default GENREC_HOME/stack)."


def _stack(directory: Optional[Path]):
    from genrec.paths import genrec_home
    from genrec.stack import Stack

    return Stack(directory or genrec_home() / "stack")


def _print_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        sys.stdout.write(f"export {key}={value}\n")
    sys.stdout.flush()


@stack_app.command("up")
@guarded
def stack_up(
    directory: Optional[Path] = typer.Option(None, "--dir", help=STACK_DIR_HELP),
    prefect_port: int = typer.Option(4200, "--prefect-port"),
    mlflow_port: int = typer.Option(5000, "--mlflow-port"),
    postgres_port: int = typer.Option(5433, "--postgres-port"),
    sqlite: bool = typer.Option(False, "--sqlite", help="MLflow's store on SQLite even where PostgreSQL is installed."),
) -> None:
    """Start the servers; print (on stdout) the environment that points genrec at them:
    `eval "$(genrec stack up)"`."""
    from genrec.stack import Ports

    stack = _stack(directory)
    env = stack.up(Ports(prefect_port, mlflow_port, postgres_port), sqlite=sqlite,
                   say=lambda line: err.print(line, highlight=False, soft_wrap=True))
    err.print(f"Stack up (state, logs and data under {stack.root}); `genrec stack down` stops it. "
              "Point genrec at it with:", highlight=False, soft_wrap=True)
    _print_env(env)


@stack_app.command("down")
@guarded
def stack_down(directory: Optional[Path] = typer.Option(None, "--dir", help=STACK_DIR_HELP)) -> None:
    """Stop the servers (their data stays in the stack's folder for the next `up`)."""
    stack = _stack(directory)
    stopped = stack.down()
    if not stopped:
        err.print(f"No stack runs from {stack.root}.", highlight=False)
        return
    err.print(f"Stopped {', '.join(stopped)}; data kept under {stack.root}. Unset PREFECT_API_URL and "
              "MLFLOW_TRACKING_URI to go back to the embedded defaults.", highlight=False, soft_wrap=True)


@stack_app.command("status")
@guarded
def stack_status(directory: Optional[Path] = typer.Option(None, "--dir", help=STACK_DIR_HELP),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """What runs, and the environment that points genrec at it."""
    stack = _stack(directory)
    running = stack.running()
    if as_json:
        _emit_json({"root": str(stack.root), "running": running, "env": stack.env() if running else {}})
        return
    if not running:
        err.print(f"No stack runs from {stack.root}.", highlight=False)
        raise typer.Exit(4)
    for name, alive in running.items():
        err.print(f"{name}: {'running' if alive else 'NOT running'}", highlight=False)
    _print_env(stack.env())


def main() -> None:
    from genrec import lifeline
    from genrec.allocator import keep_freed_memory

    for key, value in environment_defaults().items():
        os.environ.setdefault(key, value)
    keep_freed_memory()  # large score blocks and training tensors reuse freed pages
    lifeline.start()  # what this process starts (Prefect's temporary server) ends with it
    app()


if __name__ == "__main__":
    main()
