"""Orchestration against real services: Neo4j, a killed refresh, a real Prefect server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from flows.publishing import latest_publication
from flows.refresh import RefreshParams, refresh_domain
from quality.synth import sample_path

REPO = Path(__file__).resolve().parents[2]
KGREC = str(Path(sys.executable).with_name("kgrec"))
FAST = dict(evaluate=False, epochs=8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(OMP_WAIT_POLICY="PASSIVE", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", **extra)
    return env


@pytest.mark.neo4j
def test_refresh_on_the_real_neo4j_server(prefect_api, shared_cache, tmp_path, neo4j_server, neo4j_driver):
    out = tmp_path / "out"
    travel = refresh_domain(RefreshParams(dataset_dir=str(sample_path("travel")), out=str(out), graph=neo4j_server.uri,
                                          cache_dir=str(shared_cache), **FAST))
    social = refresh_domain(RefreshParams(dataset_dir=str(sample_path("social")), out=str(out), graph=neo4j_server.uri,
                                          cache_dir=str(shared_cache), **FAST))
    recs = pd.read_parquet(Path(social["publication"]) / "recommendations.parquet")

    def count(domain: str, run_id: str) -> int:
        rows, _, _ = neo4j_driver.execute_query(
            "MATCH (u:User {domain: $d})-[r:RECOMMENDED {run_id: $r}]->(i:Item {domain: $d}) RETURN count(r) AS n",
            d=domain, r=run_id, database_=neo4j_server.database)
        return rows[0]["n"]

    assert count("social", social["run_id"]) == len(recs)
    # publishing social replaced only social's RECOMMENDED edges: travel's are still there
    travel_recs = pd.read_parquet(Path(travel["publication"]) / "recommendations.parquet")
    assert count("travel", travel["run_id"]) == len(travel_recs)
    # the graph itself is in Neo4j: the sample's friend links became FOLLOWS
    rows, _, _ = neo4j_driver.execute_query(
        "MATCH (:User {domain: 'social'})-[f:FOLLOWS]->(:User {domain: 'social'}) RETURN count(f) AS n",
        database_=neo4j_server.database)
    assert rows[0]["n"] > 100


def test_refresh_killed_mid_run_never_becomes_latest(prefect_api, shared_cache, tmp_path):
    out = tmp_path / "out"
    first = refresh_domain(RefreshParams(dataset_dir=str(sample_path("ecommerce")), out=str(out),
                                         cache_dir=str(shared_cache), **FAST))
    # A second refresh in its own process, with its own cache so it has real work to do.
    cmd = [KGREC, "refresh", str(sample_path("ecommerce")), "--out", str(out), "--no-evaluate", "--epochs", "8"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 600
        graph_file = out / "ecommerce" / "graph" / "graph.pkl"
        mtime0 = graph_file.stat().st_mtime
        cache = out / "cache" / "ecommerce"
        # kill once the run is past the gate and into the heavy steps
        while time.time() < deadline and not list(cache.glob("mentions/linked-*.parquet")):
            assert proc.poll() is None, "the refresh ended before it could be killed"
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert mtime0 <= graph_file.stat().st_mtime
    pub = latest_publication(out, "ecommerce")
    assert pub.run_id == first["run_id"]
    assert pd.read_parquet(pub.recommendations)["run_id"].eq(first["run_id"]).all()
    # the next run succeeds and becomes latest
    again = refresh_domain(RefreshParams(dataset_dir=str(sample_path("ecommerce")), out=str(out),
                                         cache_dir=str(shared_cache), **FAST))
    assert latest_publication(out, "ecommerce").run_id == again["run_id"]
    assert not list((out / "ecommerce").glob(".staging-*"))


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    home = tmp_path / "prefect-home"
    env = _child_env(PREFECT_HOME=str(home))
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait_http(f"{api}/health", 180)
        yield api, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_deployments_on_a_real_prefect_server(prefect_server, tmp_path):
    api, home = prefect_server
    env = _child_env(PREFECT_HOME=str(home), PREFECT_API_URL=api)
    out = tmp_path / "out"
    reg = subprocess.run([KGREC, "deploy", "--no-serve", "--paused", "--out", str(out)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert reg.returncode == 0, reg.stderr[-2000:]
    for domain in ("ecommerce", "content", "social", "travel"):
        assert f"refresh-domain/refresh-{domain}" in reg.stdout

    # serve them (the same process a user keeps running), trigger one run through the API
    server = subprocess.Popen([KGREC, "deploy", "--paused", "--out", str(out)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        script = f"""
import asyncio, json
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

params = json.loads({RefreshParams(dataset_dir=str(sample_path('social')), out=str(out), **FAST).model_dump_json()!r})
run = run_deployment("refresh-domain/refresh-social", parameters={{"params": params}}, timeout=900, poll_interval=3)

async def info():
    async with get_client() as c:
        dep = await c.read_deployment_by_name("refresh-domain/refresh-social")
        return [s.schedule.cron for s in dep.schedules]

print(json.dumps({{"state": run.state.name, "crons": asyncio.run(info())}}))
"""
        res = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=1000)
        assert res.returncode == 0, res.stderr[-3000:]
        info = json.loads(res.stdout.strip().splitlines()[-1])
        assert info["state"] == "Completed", info
        assert info["crons"] == ["0 4 * * *"]
        assert latest_publication(out, "social") is not None
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
