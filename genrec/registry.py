"""MLflow in one place: tracking runs, the pyfunc model, the registry, aliases and their history.

The tracking store defaults to SQLite under `GENREC_HOME` (artifacts beside it) unless
`MLFLOW_TRACKING_URI` is set. `champion` marks the deployed version, `challenger` the latest
candidate. MLflow keeps no history of alias moves, so every move of `champion` is also written as a
registered-model tag `genrec.history.NNNNNN` (JSON), which lives with the registry.

A registered model is data loaded by code: the `ServingModel`'s files (JSON and safetensors) as the
pyfunc's artifacts, `genrec/mlflow_model.py` as its code (MLflow's models from code), and a wheel of
the installed genrec as its one requirement. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from genrec.crashpoints import crash_point
from genrec.errors import NotFoundError, UnloadableModelError
from genrec.lifeline import process_alive  # noqa: F401 - the flows and the pipeline call it from here
from genrec.paths import artifacts_dir, genrec_home, redacted, tracking_uri
from genrec.registry_view import CHALLENGER, CHAMPION, HISTORY_PREFIX, INTENT, pending, version_entry  # noqa: F401
from genrec.registry_view import json_tag as _json_tag

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
"""The `genrec_format` in a logged model's metadata; a model without it predates the format."""


_READY: set[str] = set()


def _mlflow():
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri.startswith("sqlite:") and uri not in _READY:
        # The first use of a SQLite store creates and migrates it; two processes doing that at once
        # on a fresh GENREC_HOME race, so one does it, under a lock, and the other finds it done.
        from filelock import FileLock

        home = genrec_home()
        home.mkdir(parents=True, exist_ok=True)
        with FileLock(str(home / "store.lock"), timeout=600):
            if uri == f"sqlite:///{home / 'mlflow.db'}":
                from genrec.home import follow

                follow(home, home / "mlflow.db")  # a moved or copied home reads its own files
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
        _READY.add(uri)
    return mlflow


def client():
    return _mlflow().MlflowClient()


def ensure_experiment(name: str, artifact_location: str = "") -> str:
    """The experiment's id, creating it if needed: its artifacts at `artifact_location` when given;
    else where a tracking server says (so that every host reads them through the server); else,
    with a local store, under `GENREC_HOME`."""
    mlflow = _mlflow()
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if not artifact_location and not tracking_uri().startswith(("http://", "https://", "databricks")):
        location = artifacts_dir()
        location.mkdir(parents=True, exist_ok=True)
        artifact_location = location.as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location or None)


# --- the model as MLflow serves it -------------------------------------------------------------


def pyfunc_model():
    """The pyfunc model `genrec/mlflow_model.py` hands MLflow: it loads the `ServingModel` from the
    model's artifacts; bad requests become HTTP 400."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    class GenrecModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            from genrec.serving import ServingModel

            self.served = ServingModel.load(Path(context.artifacts["model"]))

        def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
            from genrec.serving import BadRequest

            try:
                k = int((params or {}).get("k", 10))
                return self.served.predict(model_input, k=k)
            except (BadRequest, ValueError, TypeError) as exc:
                raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None

    return GenrecModel()


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([
            ColSpec(DataType.string, "user_id", required=False),
            ColSpec(Array(DataType.string), "history", required=False),
        ]),
        outputs=Schema([
            ColSpec(DataType.string, "user_id"),
            ColSpec(Array(DataType.string), "items"),
            ColSpec(Array(DataType.double), "scores"),
            ColSpec(Array(DataType.string), "names"),
            ColSpec(DataType.boolean, "fallback"),
        ]),
        params=ParamSchema([ParamSpec("k", DataType.long, 10)]),
    )


def log_model(served, input_example: pd.DataFrame) -> str:
    """Log a `ServingModel` as a pyfunc model in the active run; returns its model URI."""
    from genrec.wheel import build_wheel, version

    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        files = served.save(Path(tmp) / "model")
        wheel = build_wheel(Path(tmp) / "wheels")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("mlflow_model.py")),
            artifacts={"model": str(files), "wheel": str(wheel)},
            signature=_signature(),
            input_example=(input_example, {"k": 10}),
            pip_requirements=[f"artifacts/{wheel.name}"],
            metadata={"genrec_format": MODEL_FORMAT, "genrec_version": version()},
        )
    return info.model_uri


def check_loadable(model_uri: str) -> None:
    """UnloadableModelError unless `model_uri` is a model this genrec loads (read from its MLmodel
    file alone, before anything of the model is loaded)."""
    from mlflow.exceptions import MlflowException

    try:
        metadata = _mlflow().models.get_model_info(model_uri).metadata or {}
    except MlflowException as exc:
        if _missing(exc):
            raise NotFoundError(f"No model at {model_uri}: {exc.message}") from None
        raise UnloadableModelError(f"Cannot read the model at {model_uri}: {exc.message}") from None
    except OSError as exc:
        raise UnloadableModelError(f"Cannot read the model at {model_uri}: {exc}.") from None
    found = metadata.get("genrec_format")
    if found == MODEL_FORMAT:
        return
    if found is None:
        raise UnloadableModelError(
            f"{model_uri} was registered by a genrec older than 0.2 as a pickled Python object, which this genrec "
            "never unpickles: train a new version with `genrec run` (or `genrec promote` a version registered "
            "since), or load this one with genrec 0.1.")
    raise UnloadableModelError(f"{model_uri} is in genrec model format {found!r}; this genrec "
                               f"({_version()}) reads format {MODEL_FORMAT}: install the genrec that registered it.")


def _version() -> str:
    from genrec.wheel import version

    return version()


def load_model(model_uri: str):
    """A pyfunc model, loaded back as a server would load it (its format checked first). A missing
    or corrupt artifact is an UnloadableModelError that names the version and where it is stored."""
    check_loadable(model_uri)
    try:
        return _mlflow().pyfunc.load_model(model_uri)
    except NotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a broken artifact raises, say which one it is
        reason = str(exc).splitlines()[0] if str(exc) else ""
        kind = "" if isinstance(exc, UnloadableModelError) else f"{type(exc).__name__}: "
        raise UnloadableModelError(f"{_described(model_uri)} cannot be loaded from {_stored_at(model_uri)}: "
                                   f"{kind}{reason}") from exc


def _described(model_uri: str) -> str:
    parts = model_uri.removeprefix("models:/").split("/")
    if model_uri.startswith("models:/") and len(parts) == 2:
        return f"Version {parts[1]} of model {parts[0]!r}"
    return model_uri


def _stored_at(model_uri: str) -> str:
    """Where the artifacts of `model_uri` are stored (for error messages), or the URI itself."""
    try:
        parts = model_uri.removeprefix("models:/").split("/")
        mv = client().get_model_version(parts[0], parts[1])
        model_id = getattr(mv, "model_id", None) or (mv.source.removeprefix("models:/")
                                                     if mv.source.startswith("models:/m-") else None)
        location = client().get_logged_model(model_id).artifact_location if model_id else mv.source
        return redacted(location.removeprefix("file://"))
    except Exception:  # noqa: BLE001 - a location is a courtesy in an error already being raised
        return model_uri


def load_serving_model(model_uri: str):
    """The `ServingModel` inside a registered genrec model (batch scoring in-process)."""
    return load_model(model_uri).unwrap_python_model().served


def log_reference(profile, training) -> None:
    """Log what the candidate trained on (artifact folder `reference/`): the data profile, for the
    next run's drift checks, and the training pairs and cutoff, for a fair gate, once this version
    is champion. Both are objects with `save(directory)`."""
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        folder = profile.save(Path(tmp) / "reference")
        training.save(folder)
        mlflow.log_artifacts(str(folder), "reference")


@contextlib.contextmanager
def reference_dir(model_name: str, version: str) -> Iterator[Path | None]:
    """The `reference/` folder logged with `version`, downloaded for the duration of the block
    (None if it has none)."""
    from mlflow.exceptions import MlflowException

    run_id = get_version(model_name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(_mlflow().artifacts.download_artifacts(run_id=run_id, artifact_path="reference", dst_path=tmp))
        except (MlflowException, OSError):
            path = None
        yield path


# --- tracking ----------------------------------------------------------------------------------


@dataclass
class TrainingRun:
    """The active MLflow run of one training flow run."""

    run_id: str

    def log_params(self, params: dict[str, Any]) -> None:
        _mlflow().log_params({k: str(v)[:500] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        _mlflow().log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items()}, step=step)

    def log_dict(self, data: dict[str, Any], name: str) -> None:
        _mlflow().log_dict(data, name)

    def log_figure(self, figure, name: str) -> None:
        """Log a matplotlib figure, then close it (pyplot keeps every open figure alive)."""
        import matplotlib.pyplot as plt

        try:
            _mlflow().log_figure(figure, name)
        finally:
            plt.close(figure)

    def set_tags(self, tags: dict[str, Any]) -> None:
        _mlflow().set_tags({k: str(v) for k, v in tags.items()})


def start_run(experiment: str, run_name: str | None = None, artifact_location: str = "") -> TrainingRun:
    """Start the run; it is tagged with this process's host and pid, so that a later start can tell
    that a run left RUNNING belongs to a process that died (`close_dead_runs`)."""
    mlflow = _mlflow()
    run = mlflow.start_run(experiment_id=ensure_experiment(experiment, artifact_location), run_name=run_name,
                           tags={"genrec.host": socket.gethostname(), "genrec.pid": str(os.getpid())})
    return TrainingRun(run_id=run.info.run_id)


def close_dead_runs(experiment: str) -> list[str]:
    """Mark KILLED every RUNNING run of `experiment` started on this host by a process that is gone
    (killed, crashed without cleaning up), with the reason as a tag; returns their ids."""
    mlflow = _mlflow()
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return []
    c = client()
    closed = []
    for run in c.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get("genrec.host") != socket.gethostname() or not tags.get("genrec.pid", "").isdigit():
            continue
        if process_alive(int(tags["genrec.pid"])):
            continue
        c.set_tag(run.info.run_id, "genrec.end_reason",
                  f"process {tags['genrec.pid']} on {tags['genrec.host']} ended without finishing the run")
        c.set_terminated(run.info.run_id, status="KILLED")
        closed.append(run.info.run_id)
    if closed:
        log.warning("marked %d MLflow run(s) of dead processes KILLED: %s", len(closed), ", ".join(closed))
    return closed


def log_input(head: pd.DataFrame, rows: int, name: str, source: str, digest: str) -> None:
    """Record the active run's training input: its schema read from `head` (its first rows), its
    size `rows`, genrec's fingerprint as its digest (MLflow's own digest hashes only the head of a
    frame, and its schema inference visits every value in Python: minutes on 20M rows)."""
    import warnings

    mlflow = _mlflow()
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.pandas_dataset import PandasDataset

    class Sized(PandasDataset):
        @property
        def profile(self) -> dict[str, int]:
            return {"num_rows": rows, "num_elements": rows * head.shape[1]}

    with warnings.catch_warnings():  # MLflow registers its local-file source type twice and says so
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        dataset = Sized(head, resolve_dataset_source(source), name=name, digest=digest)
    mlflow.log_input(dataset, context="training")


def end_run(status: str = "FINISHED") -> None:
    _mlflow().end_run(status=status)


# --- registry ----------------------------------------------------------------------------------


def _missing(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


def register(model_uri: str, model_name: str, tags: dict[str, Any]) -> str:
    """Register a new version (tags set in the same call) and point `challenger` at it."""
    mlflow = _mlflow()
    version = mlflow.register_model(model_uri, model_name, tags={k: _tag(v) for k, v in tags.items()})
    client().set_registered_model_alias(model_name, CHALLENGER, version.version)
    return str(version.version)


def set_version_tags(model_name: str, version: str, tags: dict[str, Any]) -> None:
    c = client()
    for key, value in tags.items():
        c.set_model_version_tag(model_name, str(version), key, _tag(value))


def _tag(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def champion_version(model_name: str) -> str | None:
    """The version `champion` points at, or None if there is none (or no such model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise


def get_version(model_name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version(model_name, str(version))
    except MlflowException as exc:
        if _missing(exc):
            raise NotFoundError(f"Model {model_name!r} has no version {version}.") from None
        raise


def version_uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def _history(c, model_name: str) -> list[dict[str, Any]]:
    tags = c.get_registered_model(model_name).tags
    return [json.loads(v) for k, v in sorted(tags.items()) if k.startswith(HISTORY_PREFIX)]


def history(model_name: str) -> list[dict[str, Any]]:
    """Every recorded move of `champion`, oldest first (a move a crash cut short is finished or
    dropped first: `repair_champion`)."""
    from mlflow.exceptions import MlflowException

    try:
        with _champion_lock():
            repair_champion(model_name)
            return _history(client(), model_name)
    except MlflowException as exc:
        if _missing(exc):
            return []
        raise


class ChampionMoved(Exception):
    """`champion` moved between the gate's decision and the promotion."""


def _champion_lock():
    """One writer of `champion` and its history at a time (processes on this machine share
    GENREC_HOME, so they share the lock file)."""
    from filelock import FileLock

    home = genrec_home()
    home.mkdir(parents=True, exist_ok=True)
    return FileLock(str(home / "champion.lock"), timeout=120)


def repair_champion(model_name: str) -> str | None:
    """Finish or drop a move of `champion` that a crash cut short (call under the lock). A move
    first writes its intent, then the alias, then the history entry, then deletes the intent: if
    the alias reached the intended version, the history entry is written; if not, the intent is
    dropped. Returns what was repaired, in words (None: nothing to repair)."""
    c = client()
    tags = c.get_registered_model(model_name).tags
    if INTENT not in tags:
        return None
    intent = json.loads(tags[INTENT])
    key = intent.pop("key")
    now = champion_version(model_name)
    if now == intent["to_version"]:
        written = key in tags
        if not written:
            c.set_registered_model_tag(model_name, key, json.dumps(intent))
        said = (f"the move of champion {intent['from_version']} -> {intent['to_version']} was cut short after the "
                + ("history entry; it is complete" if written else "alias moved; its history entry is written now"))
    else:
        said = (f"the move of champion {intent['from_version']} -> {intent['to_version']} was cut short before the "
                f"alias moved (champion is {now}); it is dropped")
    c.delete_registered_model_tag(model_name, INTENT)
    log.warning("repaired %s: %s", model_name, said)
    return said


def move_champion(
    model_name: str, version: str, reason: str, actor: str, expected_from: str | None | object = ...
) -> dict[str, Any]:
    """Point `champion` at `version` and record the move (time, from, to, reason, actor).

    Under a lock, as a write-ahead sequence that a crash at any instruction leaves recoverable:
    the intent, the alias, the history entry, then the intent deleted (`repair_champion` finishes
    or drops a cut-short move on the next read or move). With `expected_from`, the move happens only
    if `champion` is still that version (else `ChampionMoved`): the gate promotes only over the
    champion it compared against.
    """
    get_version(model_name, version)  # NotFoundError if missing
    c = client()
    with _champion_lock():
        repair_champion(model_name)
        previous = champion_version(model_name)
        if expected_from is not ... and previous != expected_from:
            raise ChampionMoved(f"champion of {model_name} is now {previous}, not {expected_from}")
        event = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "alias": CHAMPION,
            "from_version": previous,
            "to_version": str(version),
            "reason": reason,
            "actor": actor,
        }
        key = f"{HISTORY_PREFIX}{len(_history(c, model_name)) + 1:06d}"
        c.set_registered_model_tag(model_name, INTENT, json.dumps({**event, "key": key}))
        crash_point("champion:intent")
        try:
            c.set_registered_model_alias(model_name, CHAMPION, str(version))
        except BaseException:
            c.delete_registered_model_tag(model_name, INTENT)
            raise
        crash_point("champion:alias")
        c.set_registered_model_tag(model_name, key, json.dumps(event))
        crash_point("champion:history")
        c.delete_registered_model_tag(model_name, INTENT)
    log.info("champion of %s: %s -> %s (%s)", model_name, previous, version, reason)
    return event


def list_versions(model_name: str) -> list[dict[str, Any]]:
    """Registered versions, newest first, with aliases and genrec's tags decoded."""
    c = client()
    try:
        versions = c.search_model_versions(f"name='{model_name}'")
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for a missing model
        if _missing(exc):
            return []
        raise
    aliases: dict[str, list[str]] = {}
    for alias, version in (c.get_registered_model(model_name).aliases or {}).items() if versions else ():
        aliases.setdefault(str(version), []).append(alias)
    out = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags, held = dict(v.tags or {}), aliases.get(str(v.version), [])
        out.append(version_entry(v.version, v.run_id, v.creation_timestamp, tags, held, _promotion(c, v, tags, held)))
    return out


def _promotion(c, version, tags: dict[str, str], aliases: list[str]) -> dict[str, Any] | None:
    """What became of a version's promotion: as its run recorded it, or, where the run ended before
    it could (killed, failed), saying so."""
    promotion = _json_tag(tags.get("promotion"), None)
    if not pending(promotion, aliases):
        return promotion
    try:
        run = c.get_run(version.run_id) if version.run_id else None
    except Exception:  # noqa: BLE001 - a run the store no longer has
        run = None
    status = run.info.status if run is not None else None
    if status == "RUNNING":
        pid = run.data.tags.get("genrec.pid", "")
        if run.data.tags.get("genrec.host") != socket.gethostname() or not pid.isdigit() or process_alive(int(pid)):
            return promotion
        status = f"process {pid} is gone"
    return {"status": "not promoted", "reason": f"passed the gate, but its training run ended ({status or 'gone'}) "
                                                "before promoting it: promote it with `genrec promote` if it should be"}
