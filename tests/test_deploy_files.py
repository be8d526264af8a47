"""The production files in deploy/ are valid for the tools that read them: the compose file for
Docker Compose, the Kubernetes manifests against Kubernetes' schemas, the Dockerfile's install step
(deploy/install.sh, run in a fresh venv from the built wheel) for an environment with nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def _compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_compose_file_is_valid_and_runs_the_stack():
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)")
    checked = subprocess.run([*compose, "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "minio", "prefect-server", "mlflow", "worker", "serve"} <= set(services)
    assert "--serve-artifacts" in services["mlflow"]["command"] and "s3://" in services["mlflow"]["command"]
    assert services["worker"]["command"].startswith("prefect worker start --pool genrec")


def test_compose_check_rejects_a_broken_file(tmp_path):
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    broken = (DEPLOY / "docker-compose.yml").read_text().replace("  worker:\n", "  worker:\n    no_such_option: 1\n")
    (tmp_path / "docker-compose.yml").write_text(broken)
    shutil.copy(DEPLOY / "postgres-init.sql", tmp_path)
    checked = subprocess.run([*compose, "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
                             capture_output=True, text=True)
    assert checked.returncode != 0 and "no_such_option" in checked.stdout + checked.stderr


def test_kubernetes_manifests_pass_the_schema_check():
    import kubernetes_validate

    documents = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "genrec.yaml").read_text()) if d]
    assert {d["kind"] for d in documents} == {"ConfigMap", "Deployment", "Job", "Service"}
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)  # raises on any schema error
    broken = {**documents[1], "spec": {**documents[1]["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)


def test_image_install_step_in_a_fresh_venv(tmp_path):
    """deploy/Dockerfile's install, without Docker: the wheel built from this checkout, then
    deploy/install.sh in a new venv that has nothing but pip."""
    wheel_dir = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheel_dir), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheel_dir.glob("genrec-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    installed = subprocess.run(["bash", str(DEPLOY / "install.sh"), str(wheel)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    assert f"genrec installed: {env_dir}" in installed.stdout  # the venv's genrec, its suites inside it
    frozen = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True)
    pins = dict(line.split("==", 1) for line in (DEPLOY / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for line in frozen.stdout.splitlines():
        name, _, version = line.partition("==")
        if name in pins:
            assert version.split("+")[0] == pins[name], line
