"""Prefect deployments read from `deploy/prefect.yaml` (Prefect's own format).

Into a work pool (what `genrec deploy` does by default), each deployment points at this checkout's
folder (Prefect's set_working_directory pull step), so that a worker on this host, or one whose image
has the code at the same path, can run it. For `genrec deploy --serve` they have no pool: the
serving process itself runs them.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

DEPLOY_FILE = Path(__file__).resolve().parents[1] / "deploy" / "prefect.yaml"
"""The checkout's file; an installed genrec (an image) reads `deploy/prefect.yaml` of the working folder."""


def deploy_file() -> Path:
    """`deploy/prefect.yaml` of the working folder where there is one (an image's /opt/genrec), else
    the checkout's; the flows' entrypoints are relative to the folder above it."""
    here = Path.cwd() / "deploy" / "prefect.yaml"
    return here if here.is_file() else DEPLOY_FILE


def default_pool(path: Path) -> str:
    """The work pool the file's deployments name."""
    spec = yaml.safe_load(path.read_text())
    return spec["deployments"][0]["work_pool"]["name"]


def load_deployments(path: Path | None = None, pool: str | None = None) -> list:
    """One RunnerDeployment per entry, with its schedules, parameters and tags; into work pool `pool`
    (with the file's job variables) when given, else for serving from this process."""
    from prefect.schedules import Cron

    path = path or deploy_file()
    spec = yaml.safe_load(path.read_text())
    root = path.resolve().parents[1]
    deployments = []
    for entry in spec["deployments"]:
        file, _, func = entry["entrypoint"].partition(":")
        schedules = [Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in entry.get("schedules", [])]
        common = dict(name=entry["name"], description=entry.get("description"), tags=entry.get("tags", []),
                      parameters=entry.get("parameters", {}), schedules=schedules)
        if pool is None:
            flow = load_flow_from_entrypoint(f"{root / file}:{func}")
            deployments.append(flow.to_deployment(**common))
            continue
        from prefect.flows import Flow

        flow = Flow.from_source(source=str(root), entrypoint=entry["entrypoint"])
        job_variables = (entry.get("work_pool") or {}).get("job_variables") or {}
        deployments.append(flow.to_deployment(work_pool_name=pool, job_variables=job_variables, **common))
    return deployments


def apply_deployments(deployments: list) -> list[str]:
    return [str(d.apply()) for d in deployments]


def ensure_process_pool(name: str) -> bool:
    """Create work pool `name` (type process) where the API has none of that name; True if created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return True


def workers_online(pool: str) -> bool:
    """Whether a worker has polled work pool `pool` lately (Prefect marks it ONLINE)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return any(str(w.status).endswith("ONLINE") for w in client.read_workers_for_work_pool(pool))
