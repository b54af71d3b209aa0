"""docker/: the compose file is valid for Docker Compose itself, and the image installs like CI.

No Docker engine runs on these machines, but ``docker compose config`` needs none: it parses,
interpolates and validates the file against the Compose specification. The compose CLI comes
from the docker plugin when installed, else from tools/build_compose.sh (built from the Go
module proxy during set-up).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    built = subprocess.run(["bash", str(ROOT / "tools" / "build_compose.sh"), "--check"],
                           capture_output=True, text=True)
    if built.returncode:
        pytest.skip("no docker compose CLI: install Go and run bash tools/build_compose.sh")
    return [built.stdout.strip().splitlines()[-1]]


def compose_config(env_file: Path | None, tmp_path: Path) -> subprocess.CompletedProcess:
    # a clean environment: values come only from the env file, as for a user's docker/.env
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    if env_file is None:  # an empty one, so a developer's docker/.env is not read either
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    args = ["--env-file", str(env_file)]
    return subprocess.run([*compose_command(), "-f", str(DOCKER / "compose.yaml"), *args, "config",
                           "--format", "json"], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_compose_config_passes_with_the_example_env_file(tmp_path):
    done = compose_config(DOCKER / "env.example", tmp_path)
    assert done.returncode == 0, done.stderr
    project = json.loads(done.stdout)
    services = project["services"]
    assert set(services) == {"neo4j", "postgres", "prefect-server", "worker", "api"}
    assert services["neo4j"]["image"].startswith("neo4j:5.26")
    assert "apoc" in services["neo4j"]["environment"]["NEO4J_PLUGINS"]
    # health checks on every long-running server, and the API waits for its dependencies
    for name in ("neo4j", "postgres", "prefect-server", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["neo4j"]["condition"] == "service_healthy"
    # the worker refreshes into Neo4j, the API explains from it; ports only on loopback
    assert "bolt://neo4j:7687" in services["worker"]["command"]
    assert "bolt://neo4j:7687" in services["api"]["command"]
    for svc in services.values():
        for port in svc.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", port
    # secrets are interpolated from the env file, not written in the compose file
    env_values = dict(line.split("=", 1) for line in (DOCKER / "env.example").read_text().splitlines()
                      if line and not line.startswith("#"))
    assert services["worker"]["environment"]["KGREC_NEO4J_PASSWORD"] == env_values["NEO4J_PASSWORD"]
    assert env_values["NEO4J_PASSWORD"] not in (DOCKER / "compose.yaml").read_text()


def test_compose_config_refuses_a_missing_password_by_name(tmp_path):
    done = compose_config(None, tmp_path)
    assert done.returncode != 0
    assert "NEO4J_PASSWORD" in done.stderr or "POSTGRES_PASSWORD" in done.stderr, done.stderr


def test_image_installs_with_the_same_script_as_ci():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tools/setup.sh" in ci
    assert "bash tools/setup.sh" in dockerfile
    # and the files that script reads are copied into the image before it runs
    for name in ("requirements.lock", "pyproject.toml", "tools"):
        assert name in dockerfile.split("bash tools/setup.sh")[0], name
