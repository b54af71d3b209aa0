"""Graph ingest benchmark: INTERACTED relationships per second into Neo4j and into networkx.

For each size it generates a dataset (``quality.synth``), or imports ml-latest-small for the
size ``ml-latest-small`` (from ``--data``), passes it through the quality gate once, then builds
the graph in a fresh Python process per store, so that the process's peak memory is the
ingest's alone. Each child reports:

* ``INTERACTED rel/s``: interaction rows ÷ seconds spent in ``write_rels(INTERACTED)``;
* ``all rel/s``: every relationship of the build ÷ the whole ``build_graph`` time (schema,
  nodes, relationships, stale cleanup, flush);
* ``rel per CPU-s``: interaction rows ÷ CPU seconds the client and the Neo4j server used while
  writing them: what the rate would be if nothing else competed for the cores (the machine is
  shared, so wall-clock rates move with its load, shown as the 1-minute load average);
* ``peak RSS``: the child's peak resident memory (``ru_maxrss``) and the growth during the build.

Targets (issue 3): ≥ 50,000 INTERACTED rel/s into Neo4j; ≤ 2 GB Python peak at 1M interactions.

Usage::

    python benchmarks/graph_ingest.py                       # 100k and 1M, both stores
    python benchmarks/graph_ingest.py --sizes 100000 --stores networkx
    python benchmarks/graph_ingest.py --sizes ml-latest-small,1000000
    python benchmarks/graph_ingest.py --batch-size 20000    # Neo4j rows per transaction

Datasets and gate results are cached under ``--work`` (default ``out/bench-graph``); rerunning
reuses them. Neo4j is the project's own server (``kg.server``): started for the run if it is not
running, and stopped afterwards only if this run started it. The benchmark domain is dropped
before each Neo4j build.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOMAIN = "ecommerce"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakSampler(threading.Thread):
    """Samples this process's RSS every 20 ms; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_bytes()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.02):
            self.peak = max(self.peak, _rss_bytes())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, _rss_bytes())


def _cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used: this one when ``pid`` is None."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Timed:
    """Wraps a store and adds up the seconds spent in each write call, per label or type, and
    the CPU seconds the client and the server (``server_pid``) used in them."""

    def __init__(self, store, server_pid: int | None = None) -> None:
        self._store = store
        self._server_pid = server_pid
        self.seconds: dict[str, float] = {}
        self.client_cpu: dict[str, float] = {}
        self.server_cpu: dict[str, float] = {}

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if name not in ("write_nodes", "write_rels", "delete_stale", "flush"):
            return attr

        def timed(*args, **kwargs):
            t0, c0 = time.perf_counter(), _cpu_seconds(None)
            s0 = _cpu_seconds(self._server_pid) if self._server_pid else 0.0
            try:
                return attr(*args, **kwargs)
            finally:
                key = f"{name}:{args[0]}" if name.startswith("write_") else name
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
                self.client_cpu[key] = self.client_cpu.get(key, 0.0) + _cpu_seconds(None) - c0
                if self._server_pid:
                    self.server_cpu[key] = (self.server_cpu.get(key, 0.0)
                                            + _cpu_seconds(self._server_pid) - s0)

        return timed


# --------------------------------------------------------------------------- child: one build


def _server(args: argparse.Namespace):
    from kg.server import Neo4jServer

    return Neo4jServer(args.neo4j_home, bolt_port=args.bolt_port, http_port=args.http_port,
                       heap=args.heap, pagecache=args.pagecache)


def child(store_kind: str, dataset_pickle: Path, work: Path, batch_size: int, writers: int,
          args: argparse.Namespace) -> dict:
    from kg.builder import build_graph

    with dataset_pickle.open("rb") as fh:
        dataset = pickle.load(fh)
    base_rss = _rss_bytes()
    server_pid = None
    if store_kind == "neo4j":
        from kg.neo4j_store import Neo4jStore
        server = _server(args)
        store = Neo4jStore(server.settings(), batch_size=batch_size, writers=writers)
        store.drop_domain(dataset.domain)
        server_pid = int(server.pid_file.read_text().strip())
    else:
        from kg.networkx_store import NetworkXStore

        path = work / "graph.pickle"
        path.unlink(missing_ok=True)
        store = NetworkXStore(path)
    timed = _Timed(store, server_pid)
    sampler = _PeakSampler()
    sampler.start()
    t0 = time.perf_counter()
    counts = build_graph(timed, dataset)
    total = time.perf_counter() - t0
    peak_build = sampler.stop()
    if store_kind == "neo4j":
        store.drop_domain(dataset.domain)
    store.close()
    n_inter = counts.edges["INTERACTED"]
    return {
        "store": store_kind,
        "interactions": n_inter,
        "relationships": counts.total_edges,
        "nodes": counts.total_nodes,
        "interacted_s": timed.seconds.get("write_rels:INTERACTED", float("nan")),
        "total_s": total,
        "flush_s": timed.seconds.get("flush", 0.0),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "build_growth": peak_build - base_rss,
        "phases": timed.seconds,
        "interacted_client_cpu_s": timed.client_cpu.get("write_rels:INTERACTED", 0.0),
        "interacted_server_cpu_s": timed.server_cpu.get("write_rels:INTERACTED", 0.0),
        "load_avg": os.getloadavg()[0],
    }


# --------------------------------------------------------------------------- parent


MOVIELENS = "ml-latest-small"


def _prepare(size: int | str, work: Path, data: Path) -> Path:
    """Generate (or import, for :data:`MOVIELENS`) and gate a dataset once; return its pickled
    Dataset."""
    from quality.gate import open_dataset
    from quality.synth import SynthConfig, generate_dataset

    folder = work / f"data-{size}"
    pickled = work / f"dataset-{size}.pickle"
    if pickled.exists():
        return pickled
    if size == MOVIELENS:
        from quality.importers import import_dataset

        t0 = time.perf_counter()
        import_dataset("movielens", data, folder)
        t1 = time.perf_counter()
        dataset = open_dataset(folder)
        print(f"  imported {data} in {t1 - t0:.1f}s, gate {time.perf_counter() - t1:.1f}s: {dataset}",
              flush=True)
        return _pickle(dataset, pickled)
    n_users = max(200, size // 20)
    n_items = max(300, size // 50)
    cfg = SynthConfig(domain=DOMAIN, n_users=n_users, n_items=n_items, n_interactions=size, seed=7)
    t0 = time.perf_counter()
    generate_dataset(cfg, folder)
    t1 = time.perf_counter()
    dataset = open_dataset(folder)
    t2 = time.perf_counter()
    print(f"  generated {size:,} interactions in {t1 - t0:.1f}s, gate {t2 - t1:.1f}s: {dataset}",
          flush=True)
    return _pickle(dataset, pickled)


def _pickle(dataset, pickled: Path) -> Path:
    tmp = pickled.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(dataset, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(pickled)
    return pickled


def _run_child(store: str, pickled: Path, work: Path, batch_size: int, writers: int,
               args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", store, "--dataset", str(pickled),
           "--work", str(work), "--batch-size", str(batch_size), "--writers", str(writers),
           "--neo4j-home", str(args.neo4j_home), "--bolt-port", str(args.bolt_port),
           "--http-port", str(args.http_port), "--heap", args.heap, "--pagecache", args.pagecache]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{store} build failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _machine() -> str:
    from machine import describe

    return describe()


def _table(rows: list[dict]) -> str:
    head = ("store", "run", "interactions", "INTERACTED rel/s", "rel per CPU-s", "all rel/s", "build s",
            "peak RSS", "RSS growth", "load")
    lines = [head]
    for r in rows:
        lines.append((
            r["store"], str(r.get("run", 1)), f"{r['interactions']:,}", f"{r['interactions'] / r['interacted_s']:,.0f}",
            f"{r['interactions'] / (r['interacted_client_cpu_s'] + r['interacted_server_cpu_s']):,.0f}",
            f"{r['relationships'] / r['total_s']:,.0f}", f"{r['total_s']:.1f}",
            f"{r['peak_rss'] / 2**30:.2f} GiB", f"{r['build_growth'] / 2**30:.2f} GiB",
            f"{r['load_avg']:.1f}"))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |"
           for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000",
                   help=f"interaction counts of generated datasets, or {MOVIELENS}; comma-separated")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "movielens-latest-small",
                   help=f"the ml-latest-small folder, for the size {MOVIELENS}")
    p.add_argument("--stores", default="neo4j,networkx", help="neo4j, networkx or both")
    p.add_argument("--batch-size", type=int, default=10_000, help="Neo4j rows per transaction")
    p.add_argument("--writers", type=int, default=2,
                   help="concurrent Neo4j write transactions for a first build's relationships "
                        "(the store's default: 2)")
    p.add_argument("--repeat", type=int, default=1,
                   help="builds per (size, store); later ones run on a warmed-up server")
    p.add_argument("--work", type=Path, default=ROOT / "out" / "bench-graph")
    p.add_argument("--neo4j-home", type=Path, default=ROOT / ".neo4j",
                   help="server home (default: the project's; another home gets its own server)")
    p.add_argument("--bolt-port", type=int, default=7687)
    p.add_argument("--http-port", type=int, default=7474)
    p.add_argument("--heap", default="768m", help="server heap (the project's default: 768m)")
    p.add_argument("--pagecache", default="512m", help="server page cache (default: 512m)")
    p.add_argument("--child", choices=("neo4j", "networkx"), help=argparse.SUPPRESS)
    p.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(child(args.child, args.dataset, args.work, args.batch_size, args.writers, args)))
        return 0

    sizes = [s.strip() if s.strip() == MOVIELENS else int(s) for s in args.sizes.split(",")]
    stores = [s.strip() for s in args.stores.split(",")]
    server = None
    if "neo4j" in stores:
        server = _server(args)
        lease = server.lease()
        lease.__enter__()
    rows = []
    try:
        for size in sizes:
            print(f"{size}:" if size == MOVIELENS else f"{size:,} interactions:", flush=True)
            pickled = _prepare(size, args.work, args.data)
            for store, run in ((s, n) for s in stores for n in range(1, args.repeat + 1)):
                r = _run_child(store, pickled, args.work, args.batch_size, args.writers, args)
                r["run"] = run
                rows.append(r)
                print(f"  {store} (run {run}): {r['interactions'] / r['interacted_s']:,.0f} INTERACTED rel/s, "
                      f"build {r['total_s']:.1f}s, peak RSS {r['peak_rss'] / 2**30:.2f} GiB; "
                      f"INTERACTED CPU s client {r['interacted_client_cpu_s']:.1f}, "
                      f"server {r['interacted_server_cpu_s']:.1f}; "
                      f"phases {json.dumps({k: round(v, 2) for k, v in r['phases'].items()})}",
                      flush=True)
    finally:
        if server is not None:
            lease.__exit__(None, None, None)
    print()
    print(f"Machine: {_machine()}; Neo4j batch size {args.batch_size:,}, {args.writers} writer(s), "
          f"heap {args.heap}, page cache {args.pagecache}")
    print(_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
