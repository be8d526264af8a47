"""The batch flow: the champion's top-K for every known user, to Parquet (model version in its metadata)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from genrec import registry
from genrec.batch import write_recommendations
from genrec.config import load_config
from genrec.errors import NotFoundError
from genrec.paths import genrec_home, run_stamp


@task(name="load-champion", cache_policy=NO_CACHE, persist_result=False)
def load_champion(model_name: str):
    version = registry.champion_version(model_name)
    if version is None:
        raise NotFoundError(f"Model {model_name!r} has no champion to score with: run `genrec run` first.")
    return version, registry.load_serving_model(registry.version_uri(model_name, version))


@task(name="write-recommendations", cache_policy=NO_CACHE, persist_result=False)
def write(served, path: Path, k: int, metadata: dict[str, str]) -> dict[str, Any]:
    log = get_run_logger()
    return write_recommendations(served, path, k, metadata, progress=lambda done, total: log.info(
        "scored %d of %d users (%.0f%%)", done, total, 100 * done / max(total, 1)))


@flow(name="genrec-batch")
def batch_flow(output: str | None = None, k: int = 10, config: str = "default",
               overrides: list[str] | None = None) -> dict[str, Any]:
    """Write the champion's top-`k` for every known user to `output` (default under GENREC_HOME/batch)."""
    cfg = load_config(config, list(overrides or []))
    name = cfg.registry.model_name
    version, served = load_champion(name)
    path = Path(output) if output else genrec_home() / "batch" / run_stamp() / "recommendations.parquet"
    result = write(served, path, k, {"model_name": name, "model_version": version,
                                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    result |= {"model_name": name, "model_version": version}
    get_run_logger().info("wrote %s users' top-%d to %s (%.0f users/s)", result["users"], k, path,
                          result["users_per_second"])
    create_markdown_artifact(
        key="genrec-batch-report",
        markdown=f"# genrec batch\n\nTop-{k} of {result['users']} users from {name} version {version} "
        f"to `{path}` in {result['seconds']} s ({result['users_per_second']} users/s).",
    )
    return result
