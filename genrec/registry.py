"""MLflow in one place: tracking runs, the pyfunc model, the registry, aliases and their history.

The tracking store defaults to SQLite under `GENREC_HOME` (artifacts beside it) unless
`MLFLOW_TRACKING_URI` is set. `champion` marks the deployed version, `challenger` the latest
candidate. MLflow keeps no history of alias moves, so every move of `champion` is also written as a
registered-model tag `genrec.history.NNNNNN` (JSON), which lives with the registry.
"""

from __future__ import annotations

import json
import logging
import pickle
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from genrec.errors import NotFoundError
from genrec.paths import artifacts_dir, genrec_home, tracking_uri

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "genrec.history."
PIP_REQUIREMENTS = ["genrec", "torch==2.13.0", "pandas", "numpy", "scipy", "mlflow==3.17.2"]


def _mlflow():
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())
    return mlflow


def client():
    return _mlflow().MlflowClient()


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it with its artifacts under `GENREC_HOME` if needed."""
    mlflow = _mlflow()
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = artifacts_dir()
    location.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(name, artifact_location=location.as_uri())


# --- the model as MLflow serves it -------------------------------------------------------------


def _pyfunc_class():
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    class GenrecModel(mlflow.pyfunc.PythonModel):
        """Delegates to `genrec.serving.ServingBundle`; bad requests become HTTP 400."""

        def load_context(self, context):
            with open(context.artifacts["bundle"], "rb") as fh:
                self.bundle = pickle.load(fh)

        def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
            from genrec.serving import BadRequest

            try:
                k = int((params or {}).get("k", 10))
                return self.bundle.predict(model_input, k=k)
            except (BadRequest, ValueError, TypeError) as exc:
                raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None

    return GenrecModel


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
        ]),
        params=ParamSchema([ParamSpec("k", DataType.long, 10)]),
    )


def log_model(bundle, input_example: pd.DataFrame) -> str:
    """Log the bundle as a pyfunc model in the active run; returns its model URI."""
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.pkl"
        with path.open("wb") as fh:
            pickle.dump(bundle, fh, protocol=pickle.HIGHEST_PROTOCOL)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_pyfunc_class()(),
            artifacts={"bundle": str(path)},
            signature=_signature(),
            input_example=(input_example, {"k": 10}),
            pip_requirements=PIP_REQUIREMENTS,
        )
    return info.model_uri


def log_reference(profile, training) -> None:
    """Log what the candidate trained on (artifact folder `reference/`): the data profile, for the
    next run's drift checks, and the training pairs and cutoff, for a fair gate, once this version
    is champion."""
    mlflow = _mlflow()
    with tempfile.TemporaryDirectory() as tmp:
        folder = profile.save(Path(tmp) / "reference")
        training.save(folder)
        mlflow.log_artifacts(str(folder), "reference")


def _download_reference(model_name: str, version: str, tmp: str) -> Path | None:
    from mlflow.exceptions import MlflowException

    run_id = get_version(model_name, version).run_id
    try:
        return Path(_mlflow().artifacts.download_artifacts(run_id=run_id, artifact_path="reference", dst_path=tmp))
    except (MlflowException, OSError):
        return None


def load_profile(model_name: str, version: str):
    """The training data profile logged with `version`, or None if it has none."""
    from genrec.drift import DataProfile

    with tempfile.TemporaryDirectory() as tmp:
        path = _download_reference(model_name, version, tmp)
        return DataProfile.load(path) if path else None


def load_training_reference(model_name: str, version: str):
    """The training pairs and cutoff logged with `version`, or None if it has none."""
    from genrec.fair import TrainingReference

    with tempfile.TemporaryDirectory() as tmp:
        path = _download_reference(model_name, version, tmp)
        return TrainingReference.load(path) if path else None


def load_bundle(model_uri: str):
    """The `ServingBundle` inside a registered genrec model (for batch scoring in-process)."""
    return load_model(model_uri).unwrap_python_model().bundle


def load_model(model_uri: str):
    """A pyfunc model, loaded back as a server would load it."""
    return _mlflow().pyfunc.load_model(model_uri)


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
        _mlflow().log_figure(figure, name)

    def set_tags(self, tags: dict[str, Any]) -> None:
        _mlflow().set_tags({k: str(v) for k, v in tags.items()})


def start_run(experiment: str, run_name: str | None = None) -> TrainingRun:
    mlflow = _mlflow()
    run = mlflow.start_run(experiment_id=ensure_experiment(experiment), run_name=run_name)
    return TrainingRun(run_id=run.info.run_id)


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


def history(model_name: str) -> list[dict[str, Any]]:
    """Every recorded move of `champion`, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client().get_registered_model(model_name).tags
    except MlflowException as exc:
        if _missing(exc):
            return []
        raise
    return [json.loads(v) for k, v in sorted(tags.items()) if k.startswith(HISTORY_PREFIX)]


class ChampionMoved(Exception):
    """`champion` moved between the gate's decision and the promotion."""


def _champion_lock():
    """One writer of `champion` and its history at a time (processes on this machine share
    GENREC_HOME, so they share the lock file)."""
    from filelock import FileLock

    home = genrec_home()
    home.mkdir(parents=True, exist_ok=True)
    return FileLock(str(home / "champion.lock"), timeout=120)


def move_champion(
    model_name: str, version: str, reason: str, actor: str, expected_from: str | None | object = ...
) -> dict[str, Any]:
    """Point `champion` at `version` and record the move (time, from, to, reason, actor).

    Alias and history are written together under a lock, so concurrent moves never leave them
    disagreeing. With `expected_from`, the move happens only if `champion` is still that version
    (else `ChampionMoved`): the gate promotes only over the champion it compared against.
    """
    get_version(model_name, version)  # NotFoundError if missing
    c = client()
    with _champion_lock():
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
        key = f"{HISTORY_PREFIX}{len(history(model_name)) + 1:06d}"
        c.set_registered_model_tag(model_name, key, json.dumps(event))
        try:
            c.set_registered_model_alias(model_name, CHAMPION, str(version))
        except BaseException:
            c.delete_registered_model_tag(model_name, key)
            raise
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
        tags = dict(v.tags or {})
        out.append({
            "version": str(v.version),
            "aliases": sorted(aliases.get(str(v.version), [])),
            "metrics": _json_tag(tags.get("metrics"), {}),
            "decision": _json_tag(tags.get("decision"), {}),
            "data_fingerprint": tags.get("data_fingerprint"),
            "model_family": tags.get("model_family"),
            "flow_run_id": tags.get("flow_run_id"),
            "approval": _json_tag(tags.get("approval"), None),
            "run_id": v.run_id,
            "created": datetime.fromtimestamp(v.creation_timestamp / 1000, timezone.utc).isoformat(timespec="seconds"),
        })
    return out


def _json_tag(value: str | None, default: Any) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
