"""API latency under load on ml-latest-small's publication, from a second process on loopback.

Phases, each a bounded number of requests from a small asyncio client (raw HTTP/1.1 over
keep-alive connections, so it takes little of the CPU the server needs) against ``kgrec serve``
started as a subprocess:

* ``lookup``: published lists (``GET .../users/{id}/recommendations``), random users, without
  explanations (``explain=false``) and as by default, with the explanations the refresh
  published; closed loop (as fast as answers come) and open loop at a fixed rate (``--rate``; a
  request's latency counts from when it was due, so queueing is included);
* ``text``: new-user text queries (``POST .../recommendations`` with ``text``), a rotating set
  with a random suffix (no two queries alike), with 4 connections, with 1, and open loop at
  ``--text-rate``;
* ``explanation``: one pair per request (``GET .../users/{u}/items/{i}/explanation``), read live
  from the Neo4j backend: pairs outside the published lists (:func:`live_pairs`; a published
  pair is answered from memory), with 4 connections, with 1, and open loop at
  ``--explanation-rate``. The closed loops with 4 connections keep both cores busy, so their
  latency is mostly queueing; the open loops say what a request waits at half that load;
* ``list``: a list re-ranked with diversity 1, whose items from beyond the published list are
  explained live from the graph (3 paths each, one read for them all), no target.

On the Neo4j backend, ``--neo4j-warmup`` seconds of explanation requests (not measured) come
first: a just-started JVM compiles its hot paths over the first thousands of queries. Its
seconds 2-7 and its last 5 s are printed, so the gap stays visible.

Targets on the 2-core box: lookup p99 <= 20 ms at >= 300 req/s; text p99 <= 60 ms;
explanations p99 <= 50 ms. Numbers are printed as measured, met or not, with the CPU each
process used (client, API server, Neo4j) and the load average.

Usage::

    python benchmarks/serve_latency.py                       # prepare (once) + measure
    python benchmarks/serve_latency.py --work /tmp/kgrec-serve-bench --requests 2000

Preparing imports ml-latest-small (``../shared/data/movielens-latest-small``), starts (or
reuses) a Neo4j server of its own under ``<work>/neo4j`` (Bolt port ``--bolt-port``; test
sessions drop every domain of the project's default server) and runs the ``refresh-domain``
flow with ``evaluate=False`` into that graph; later runs reuse the publication and the graph.
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
import json  # noqa: E402
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

#: Phase groups, in the order they run (``--phases`` picks some).
PHASES = ("lookup", "text", "explanation", "list")

QUERIES = [
    "funny animated movie for the whole family", "dark psychological thriller with a twist",
    "classic science fiction about space exploration", "romantic comedy set in new york",
    "gritty crime drama about the mafia", "epic fantasy adventure with dragons",
    "documentary about music", "war film based on a true story", "slow-burn horror in a house",
    "superhero action with lots of explosions", "french arthouse drama", "teen coming of age story",
]


def prepare(work: Path, data: Path, epochs: int, bolt_port: int) -> tuple[Path, str]:
    """Import ml-latest-small and refresh it into Neo4j once; returns (out, bolt uri).

    The graph lives in a Neo4j server of its own (home ``<work>/neo4j``, port ``bolt_port``):
    the test suites drop every domain of the project's default server, benchmark graph included.
    A publication whose graph is gone (a new server, a wiped one) or was built by another graph
    schema version is refreshed again; unchanged steps come from the cache.
    """
    from flows.publishing import latest_publication
    from kg.neo4j_store import Neo4jStore
    from kg.schema import SCHEMA_VERSION
    from kg.server import Neo4jServer
    from quality.importers import import_dataset
    from quality.gate import read_manifest

    server = Neo4jServer(work / "neo4j", bolt_port=bolt_port, http_port=bolt_port + 1)
    settings = server.start()  # reuses a server that is already up
    # the refresh flow and `kgrec serve` read the credentials of this server from here
    os.environ["KGREC_NEO4J_HOME"] = str(server.home)
    os.environ["KGREC_NEO4J_URI"] = settings.uri
    out = work / "out"
    dataset = work / "movielens"
    if not (dataset / "dataset.yaml").exists():
        print(import_dataset("movielens", data, dataset).summary())
    domain = read_manifest(dataset).domain
    with Neo4jStore(settings) as store:
        meta = store.read_meta(domain)
    pub = latest_publication(out, domain)
    if (pub is None or meta is None or not meta.complete or meta.schema_version != SCHEMA_VERSION
            or not (pub.path / "explanations.parquet").exists()):
        from flows.refresh import RefreshParams, run_refresh

        t0 = time.perf_counter()
        run_refresh(RefreshParams(dataset_dir=str(dataset), out=str(out), graph=settings.uri,
                                  evaluate=False, epochs=epochs, device="cpu"))
        print(f"refresh took {time.perf_counter() - t0:.0f}s")
    return out, settings.uri


def live_pairs(pub, recs, rng: random.Random, n: int = 3000) -> list[tuple[str, str]]:
    """(user, item) pairs the publication did not explain, so each request reads the graph:
    an item from the top 5 of another user's list, not in the user's own list nor history (as
    close to a recommendation as a pair outside the lists gets)."""
    import pandas as pd

    inter = pd.read_parquet(pub.path / "interactions.parquet", columns=["user_id", "item_id"])
    own = set(zip(recs["user_id"], recs["item_id"])) | set(zip(inter["user_id"], inter["item_id"]))
    users = recs["user_id"].unique().tolist()
    tops = recs.loc[recs["rank"] <= 5, "item_id"].tolist()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        pair = (rng.choice(users), rng.choice(tops))
        if pair not in own:
            pairs.append(pair)
    return pairs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(out: Path, graph: str, port: int, text_parallel: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "flows.cli", "serve", "--out", str(out), "--port", str(port),
           "--graph", graph, "--check-interval", "5"]
    if text_parallel:
        cmd += ["--text-parallel", str(text_parallel)]
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


class Connection:
    """One keep-alive HTTP/1.1 connection: a few lines of asyncio instead of a client library, so
    the load generator spends little of the two cores it shares with the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(data)}\r\n"
                + ("Content-Type: application/json\r\n" if body is not None else "") + "\r\n")
        self.writer.write(head.encode() + data)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = None
        for line in raw.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length is None:
            raise RuntimeError(f"response without Content-Length: {raw[:200]!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _steal_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far: the hypervisor's share of a phase on a VM."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[7], sum(fields[:8])
    except (OSError, ValueError, IndexError):
        return 0, 0


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 when it cannot be read)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def load(port: int, make_request, n: int, concurrency: int, max_s: float,
               rate: float | None = None, pids: tuple = ()) -> dict:
    """Send ``n`` requests (or stop after ``max_s``) over ``concurrency`` connections.

    Closed loop (``rate`` None): each connection sends its next request when the last answered.
    Open loop: requests are due at ``rate`` per second whatever the answers; a request's latency
    counts from when it was due, so time spent waiting for a free connection is included.
    """
    conns = [await Connection.open("127.0.0.1", port) for _ in range(concurrency)]
    # Warm-up, not measured: 2 s closed loop on up to 4 of the connections, so a phase starts
    # from the steady state of a long-running server (the encoder's buffers sized for batched
    # shapes, Neo4j's JIT for the phase's query, caches filled); a fresh process's first
    # seconds ran about 1.5x slower at p99.
    warm_until = time.perf_counter() + 2

    async def warm(conn: Connection) -> None:
        while time.perf_counter() < warm_until:
            await conn.request(*make_request())

    await asyncio.gather(*[warm(c) for c in conns[:4]])
    lat: list[float] = []
    errors = 0
    sent = 0
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    others0 = [_cpu_s(pid) for pid in pids]    # the server's and Neo4j's CPU, after the warm-up
    t_end = t0 + max_s

    async def send(conn: Connection, due: float) -> None:
        nonlocal errors
        status, _ = await conn.request(*make_request())
        lat.append(time.perf_counter() - due)
        errors += status != 200

    if rate is None:
        async def worker(conn: Connection) -> None:
            nonlocal sent
            while sent < n and time.perf_counter() < t_end:
                sent += 1
                await send(conn, time.perf_counter())

        await asyncio.gather(*[worker(c) for c in conns])
    else:
        free: asyncio.Queue[Connection] = asyncio.Queue()
        for c in conns:
            free.put_nowait(c)

        async def one(due: float) -> None:
            conn = await free.get()
            try:
                await send(conn, due)
            finally:
                free.put_nowait(conn)

        tasks = []
        while sent < n:
            due = t0 + sent / rate
            if due > t_end:
                break
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(due)))
            sent += 1
        await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    others = [_cpu_s(pid) - c for pid, c in zip(pids, others0)]
    for c in conns:
        c.close()
    ms = np.asarray(lat) * 1000
    return {"n": len(ms), "errors": errors, "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "rps": len(ms) / wall, "wall": wall,
            "client_cpu": client_cpu, "others_cpu": others}


def machine() -> str:
    from machine import describe

    return describe(platform.system())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/kgrec-serve-bench"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "movielens-latest-small")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--bolt-port", type=int, default=7688,
                    help="Bolt port of the benchmark's own Neo4j server (HTTP: the next port)")
    ap.add_argument("--prepare-only", action="store_true", help="import and refresh, then stop")
    ap.add_argument("--requests", type=int, default=3000, help="requests per lookup phase")
    ap.add_argument("--max-seconds", type=float, default=20, help="cap per phase")
    ap.add_argument("--concurrency", type=int, default=4, help="connections of the closed-loop lookup phase")
    ap.add_argument("--rate", type=float, default=320,
                    help="requests/s offered in the open-loop lookup phase (above 300, so that the "
                         "achieved rate, counted up to the last answer, can clear the target)")
    ap.add_argument("--text-concurrency", type=int, default=4)
    ap.add_argument("--text-rate", type=float, default=50,
                    help="requests/s offered in the open-loop text phase (about half of what 2 cores serve)")
    ap.add_argument("--explanation-rate", type=float, default=100,
                    help="requests/s offered in the open-loop explanation phase (about half of what 2 cores serve)")
    ap.add_argument("--text-parallel", type=int, default=None,
                    help="kgrec serve --text-parallel (default: the server's, half the usable cores)")
    ap.add_argument("--explained-k", type=int, default=20, help="list length of the explained-list phase")
    ap.add_argument("--out", type=Path, default=None,
                    help="measure an existing output root instead (skips the import and refresh)")
    ap.add_argument("--keep-neo4j", action="store_true",
                    help="leave the benchmark's Neo4j server running afterwards (warm for a rerun)")
    ap.add_argument("--domain", default=None, help="with --out: the domain to measure")
    ap.add_argument("--graph", default="embedded", help="with --out: embedded or a bolt:// URI")
    ap.add_argument("--neo4j-warmup", type=float, default=60,
                    help="seconds of explanation requests, not measured, before the phases when the graph "
                         "is Neo4j: a freshly started JVM compiles its hot paths over the first thousands "
                         "of queries (0: none)")
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"comma-separated phases to run, of {', '.join(PHASES)}")
    args = ap.parse_args()
    wanted = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := sorted(set(wanted) - set(PHASES)):
        ap.error(f"unknown phases {unknown}; choose from {', '.join(PHASES)}")

    import pandas as pd

    from flows.publishing import latest_publication
    from quality.gate import read_manifest

    if args.out is not None:
        out, uri, domain = args.out, args.graph, args.domain
    else:
        out, uri = prepare(args.work, args.data, args.epochs, args.bolt_port)
        domain = read_manifest(args.work / "movielens").domain
        if args.prepare_only:
            return
    pub = latest_publication(out, domain)
    recs = pd.read_parquet(pub.recommendations, columns=["user_id", "item_id", "rank"])
    users = recs["user_id"].unique().tolist()
    rng = random.Random(7)
    pairs = live_pairs(pub, recs, rng)
    port = free_port()
    proc = start_server(out, uri, port, args.text_parallel)
    neo4j_pid = None
    if uri.startswith("bolt") and os.environ.get("KGREC_NEO4J_HOME"):
        try:
            neo4j_pid = int((Path(os.environ["KGREC_NEO4J_HOME"]) / "run" / "kgrec-neo4j.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    graph = "Neo4j" if uri.startswith("bolt") else uri

    def lookup():
        return "GET", f"/v1/{domain}/users/{rng.choice(users)}/recommendations?k=20&explain=false", None

    def lookup_explained():
        return "GET", f"/v1/{domain}/users/{rng.choice(users)}/recommendations?k=20", None

    def text():
        return "POST", f"/v1/{domain}/recommendations", {"text": f"{rng.choice(QUERIES)} {rng.randrange(10**6)}", "k": 20}

    def explanation():
        return "GET", "/v1/{}/users/{}/items/{}/explanation".format(domain, *rng.choice(pairs)), None

    def explained_list():
        return "GET", f"/v1/{domain}/users/{rng.choice(users)}/recommendations?k={args.explained_k}&diversity=1", None

    lookup_ok = lambda r: r["p99"] <= 20 and r["rps"] >= 300  # noqa: E731
    # (phase group, name, request, requests, connections, open-loop rate, target, met?)
    phases = [
        ("lookup", "lookup (published list, k=20)", lookup, args.requests, args.concurrency, None,
         "p99 <= 20 ms at >= 300 req/s", lookup_ok),
        ("lookup", f"lookup at {args.rate:g} req/s (open loop)", lookup, args.requests, 32, args.rate,
         "p99 <= 20 ms at >= 300 req/s", lookup_ok),
        ("lookup", "lookup + published explanations (the default, k=20, 3 paths each)", lookup_explained,
         args.requests, args.concurrency, None, "p99 <= 20 ms at >= 300 req/s", lookup_ok),
        ("lookup", f"lookup + published explanations at {args.rate:g} req/s (open loop)", lookup_explained,
         args.requests, 32, args.rate, "p99 <= 20 ms at >= 300 req/s", lookup_ok),
        ("text", "text cold start (POST text, k=20)", text, max(200, args.requests // 3), args.text_concurrency, None,
         "p99 <= 60 ms", lambda r: r["p99"] <= 60),
        ("text", "text cold start, one at a time", text, max(100, args.requests // 12), 1, None,
         "p99 <= 60 ms", lambda r: r["p99"] <= 60),
        ("text", f"text cold start at {args.text_rate:g} req/s (open loop)", text,
         max(200, int(args.text_rate * 10)), 8, args.text_rate, "p99 <= 60 ms", lambda r: r["p99"] <= 60),
        ("explanation", f"explanation ({graph}, 1 pair, 4 paths)", explanation, max(300, args.requests // 2), 4, None,
         "p99 <= 50 ms", lambda r: r["p99"] <= 50),
        ("explanation", f"explanation ({graph}), one at a time", explanation, max(200, args.requests // 8), 1, None,
         "p99 <= 50 ms", lambda r: r["p99"] <= 50),
        ("explanation", f"explanation ({graph}) at {args.explanation_rate:g} req/s (open loop)", explanation,
         max(300, int(args.explanation_rate * 10)), 8, args.explanation_rate, "p99 <= 50 ms", lambda r: r["p99"] <= 50),
        ("list", f"list of {args.explained_k}, diversity 1 (explanations beyond the list from {graph})",
         explained_list, max(100, args.requests // 20), 4, None, "(none)", lambda r: None),
    ]
    rows = []
    try:
        if neo4j_pid and args.neo4j_warmup > 0 and {"explanation", "list"} & set(wanted):
            # seconds 2-7 and the last 5 of the warm-up (each load() first runs 2 s unmeasured),
            # to show how far the server was from steady
            first = asyncio.run(load(port, explanation, 10**9, 4, 5, None, (proc.pid, neo4j_pid)))
            if args.neo4j_warmup > 16:
                asyncio.run(load(port, explanation, 10**9, 4, args.neo4j_warmup - 16, None, ()))
            last = asyncio.run(load(port, explanation, 10**9, 4, 5, None, (proc.pid, neo4j_pid)))
            print("Neo4j warm-up (about {:g} s of explanations, 4 connections): seconds 2-7 p99 {:.1f} ms, "
                  "Neo4j {:.1f} ms CPU/req; last 5 s p99 {:.1f} ms, Neo4j {:.1f} ms CPU/req".format(
                      args.neo4j_warmup, first["p99"], 1000 * first["others_cpu"][1] / max(first["n"], 1),
                      last["p99"], 1000 * last["others_cpu"][1] / max(last["n"], 1)), flush=True)
        for group, name, make, n, conc, rate, target, met in phases:
            if group not in wanted:
                continue
            steal0 = _steal_ticks()
            res = asyncio.run(load(port, make, n, conc, args.max_seconds, rate, (proc.pid, neo4j_pid)))
            steal, ticks = (b - a for a, b in zip(steal0, _steal_ticks()))
            server_cpu, neo4j_cpu = res.pop("others_cpu")
            wall = res.pop("wall")
            ok = met(res)
            rows.append({"phase": name, "conns": conc, **{k: res[k] for k in ("n", "errors", "p50", "p99", "rps")},
                         "client %": 100 * res["client_cpu"] / wall, "server %": 100 * server_cpu / wall,
                         "neo4j %": 100 * neo4j_cpu / wall if neo4j_pid else float("nan"),
                         # CPU per request: what contention for the cores does not inflate much
                         "server ms/req": 1000 * server_cpu / max(res["n"], 1),
                         "neo4j ms/req": 1000 * neo4j_cpu / max(res["n"], 1) if neo4j_pid else float("nan"),
                         "load": os.getloadavg()[0], "steal %": 100 * steal / max(ticks, 1), "target": target,
                         "met": "" if ok is None else ("met" if ok else "MISSED")})
            print(f"  {rows[-1]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if args.out is None and not args.keep_neo4j:
            from kg.server import Neo4jServer

            Neo4jServer(args.work / "neo4j", bolt_port=args.bolt_port, http_port=args.bolt_port + 1).stop()
    table = pd.DataFrame(rows)
    print(f"\nmachine: {machine()}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"publication: {domain} {pub.run_id} ({len(users)} users, items in items.parquet: "
          f"{len(pd.read_parquet(pub.path / 'items.parquet', columns=['item_id']))}); graph {uri}")
    print("client: one asyncio process, raw HTTP/1.1 keep-alive connections on loopback; "
          "CPU columns are % of one core over the phase (client, API server, Neo4j JVM) and CPU ms per request\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
