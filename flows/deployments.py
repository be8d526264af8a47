"""Prefect deployments read from `deploy/prefect.yaml` (Prefect's own format)."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

DEPLOY_FILE = Path(__file__).resolve().parents[1] / "deploy" / "prefect.yaml"


def load_deployments(path: Path = DEPLOY_FILE) -> list:
    """One RunnerDeployment per entry, with its schedules, parameters and tags."""
    from prefect.schedules import Cron

    spec = yaml.safe_load(path.read_text())
    root = path.resolve().parents[1]
    deployments = []
    for entry in spec["deployments"]:
        file, _, func = entry["entrypoint"].partition(":")
        flow = load_flow_from_entrypoint(f"{root / file}:{func}")
        schedules = [Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in entry.get("schedules", [])]
        deployments.append(
            flow.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                tags=entry.get("tags", []),
                parameters=entry.get("parameters", {}),
                schedules=schedules,
            )
        )
    return deployments


def apply_deployments(deployments: list) -> list[str]:
    return [str(d.apply()) for d in deployments]
