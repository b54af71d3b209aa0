"""API latency under load on ml-latest-small's publication, from a second process on loopback.

Three phases, each a bounded number of requests from a small asyncio httpx client with a fixed
number of connections in flight, against ``kgrec serve`` started as a subprocess:

* ``lookup``: published lists (``GET .../users/{id}/recommendations?explain=false``), random users;
* ``text``: new-user text queries (``POST .../recommendations`` with ``text``), a rotating set;
* ``explain``: one explanation (``GET .../users/{u}/items/{i}/explanation``) per request, for
  published (user, item) pairs, from the Neo4j backend.

Targets on the 2-core box: lookup p99 <= 20 ms at >= 300 req/s; text p99 <= 60 ms;
explanations p99 <= 50 ms. Numbers are printed as measured, met or not.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/serve_latency.py            # prepare (once) + measure
    python benchmarks/serve_latency.py --work /tmp/kgrec-serve-bench --requests 2000

Preparing imports ml-latest-small (``../shared/data/movielens-latest-small``), starts (or reuses)
the project's Neo4j server and runs the ``refresh-domain`` flow with ``evaluate=False`` into the
graph; later runs reuse the publication in ``--work``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # busy shared box

import argparse  # noqa: E402
import asyncio  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = [
    "funny animated movie for the whole family", "dark psychological thriller with a twist",
    "classic science fiction about space exploration", "romantic comedy set in new york",
    "gritty crime drama about the mafia", "epic fantasy adventure with dragons",
    "documentary about music", "war film based on a true story", "slow-burn horror in a house",
    "superhero action with lots of explosions", "french arthouse drama", "teen coming of age story",
]


def prepare(work: Path, data: Path, epochs: int) -> tuple[Path, str]:
    """Import ml-latest-small and refresh it into Neo4j once; returns (out, bolt uri)."""
    from flows.publishing import latest_publication
    from kg.server import Neo4jServer
    from quality.importers import import_dataset

    settings = Neo4jServer(ROOT / ".neo4j").start()  # reuses a server that is already up
    out = work / "out"
    dataset = work / "movielens"
    if not (dataset / "dataset.yaml").exists():
        print(import_dataset("movielens", data, dataset).summary())
    from quality.gate import read_manifest

    domain = read_manifest(dataset).domain
    if latest_publication(out, domain) is None:
        from flows.refresh import RefreshParams, run_refresh

        t0 = time.perf_counter()
        run_refresh(RefreshParams(dataset_dir=str(dataset), out=str(out), graph=settings.uri,
                                  evaluate=False, epochs=epochs, device="cpu"))
        print(f"refresh took {time.perf_counter() - t0:.0f}s")
    return out, settings.uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(out: Path, graph: str, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "flows.cli", "serve", "--out", str(out), "--port", str(port),
           "--graph", graph, "--check-interval", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kgrec serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("kgrec serve did not become ready in 180 s")


async def load(base: str, make_request, n: int, concurrency: int, max_s: float) -> dict:
    """Send ``n`` requests (or stop after ``max_s``) with ``concurrency`` in flight."""
    import httpx

    lat: list[float] = []
    errors = 0
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for _ in range(min(20, n)):  # warm-up, not measured
            method, url, body = make_request()
            await client.request(method, url, json=body)
        t_end = time.perf_counter() + max_s

        async def worker():
            nonlocal sent, errors
            while sent < n and time.perf_counter() < t_end:
                sent += 1
                method, url, body = make_request()
                t = time.perf_counter()
                r = await client.request(method, url, json=body)
                lat.append(time.perf_counter() - t)
                errors += r.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    return {"n": len(ms), "errors": errors, "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "rps": len(ms) / wall}


def machine() -> str:
    from machine import describe

    return describe(platform.system())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/kgrec-serve-bench"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "movielens-latest-small")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--requests", type=int, default=3000, help="requests per lookup phase")
    ap.add_argument("--max-seconds", type=float, default=20, help="cap per phase")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None,
                    help="measure an existing output root instead (skips the import and refresh)")
    ap.add_argument("--domain", default=None, help="with --out: the domain to measure")
    ap.add_argument("--graph", default="embedded", help="with --out: embedded or a bolt:// URI")
    args = ap.parse_args()

    import pandas as pd

    from flows.publishing import latest_publication
    from quality.gate import read_manifest

    if args.out is not None:
        out, uri, domain = args.out, args.graph, args.domain
    else:
        out, uri = prepare(args.work, args.data, args.epochs)
        domain = read_manifest(args.work / "movielens").domain
    pub = latest_publication(out, domain)
    recs = pd.read_parquet(pub.recommendations, columns=["user_id", "item_id", "rank"])
    users = recs["user_id"].unique().tolist()
    pairs = recs[recs["rank"] <= 5][["user_id", "item_id"]].itertuples(index=False, name=None)
    pairs = list(pairs)
    rng = random.Random(7)
    port = free_port()
    proc = start_server(out, uri, port)
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        phases = [
            ("lookup (published list, k=20)", lambda: (
                "GET", f"/v1/{domain}/users/{rng.choice(users)}/recommendations?k=20&explain=false", None),
             args.requests, args.concurrency, "p99 <= 20 ms at >= 300 req/s"),
            ("text cold start (POST text)", lambda: (
                "POST", f"/v1/{domain}/recommendations", {"text": rng.choice(QUERIES) + f" {rng.randrange(10**6)}", "k": 20}),
             max(200, args.requests // 6), 4, "p99 <= 60 ms"),
            (f"explanation ({'Neo4j' if uri.startswith('bolt') else uri}, 1 pair)", lambda: (
                "GET", "/v1/{}/users/{}/items/{}/explanation".format(domain, *rng.choice(pairs)), None),
             max(300, args.requests // 4), 4, "p99 <= 50 ms"),
            ("lookup + explanations (k=5)", lambda: (
                "GET", f"/v1/{domain}/users/{rng.choice(users)}/recommendations?k=5", None),
             max(100, args.requests // 20), 4, "(no target)"),
        ]
        for name, make, n, conc, target in phases:
            res = asyncio.run(load(base, make, n, conc, args.max_seconds))
            rows.append({"phase": name, "concurrency": conc, **res, "target": target})
            print(f"  {name}: {res}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    table = pd.DataFrame(rows)
    print(f"\nmachine: {machine()}")
    print(f"publication: {domain} {pub.run_id} ({len(users)} users, items in items.parquet: "
          f"{len(pd.read_parquet(pub.path / 'items.parquet', columns=['item_id']))}); graph {uri}")
    print("client: asyncio httpx in a second process, keep-alive connections, loopback\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
