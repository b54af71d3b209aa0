"""End-to-end refresh time per dataset: first run and unchanged re-run, with peak memory.

Each refresh runs in its own process (``kgrec refresh``) so peak RSS is the refresh's own, and
the re-run reuses the first run's output folder (and so its caches). Run from the repo root:

    .venv/bin/python benchmarks/refresh_e2e.py                       # the shared datasets
    .venv/bin/python benchmarks/refresh_e2e.py --datasets movielens --no-evaluate
    .venv/bin/python benchmarks/refresh_e2e.py --generated 1000000   # a generated dataset too

Prints a markdown table; ``--save FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SOURCES = {
    "movielens": ("movielens", SHARED / "movielens-latest-small"),
    "lastfm": ("lastfm", SHARED / "lastfm-hetrec2011-2k"),
    "amazon": ("amazon", SHARED / "amazon2018-gift-cards"),
    "yfcc": ("yfcc", SHARED / "flickr-yfcc100m-poi-visits" / "melbourne"),
}
KGREC = str(Path(sys.executable).with_name("kgrec"))


def timed(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """Wall seconds, peak RSS of the child in GB (GNU time), exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        kb = int((rss.read().strip().splitlines() or ["0"])[-1])
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
    return wall, kb / 1024 / 1024, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="movielens,lastfm,amazon,yfcc")
    ap.add_argument("--generated", type=int, default=0, help="also a generated dataset of this many interactions")
    ap.add_argument("--no-evaluate", action="store_true", help="skip the evaluation step")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--save", type=Path, default=None)
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="kgrec-e2e-"))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180", "PREFECT_HOME": str(work / "prefect")}
    rows = []
    jobs = [(n, *SOURCES[n]) for n in args.datasets.split(",") if n]
    if args.generated:
        jobs.append((f"generated-{args.generated}", "generate", None))
    for name, fmt, src in jobs:
        data = work / "data" / name
        if fmt == "generate":
            subprocess.run([KGREC, "generate", "ecommerce", str(data), "--users", str(args.generated // 20),
                            "--items", str(max(2000, args.generated // 50)), "--interactions", str(args.generated)],
                           cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
        else:
            if not src.exists():
                print(f"skip {name}: {src} not found", file=sys.stderr)
                continue
            subprocess.run([KGREC, "import", fmt, str(src), str(data)], cwd=REPO, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        out = work / "out" / name
        cmd = [KGREC, "refresh", str(data), "--out", str(out)] + (["--no-evaluate"] if args.no_evaluate else [])
        first, peak1, rc1 = timed(cmd, env)
        second, peak2, rc2 = timed(cmd, env)
        rows.append((name, first, second, peak1, rc1 == 0 and rc2 == 0))
        print(f"{name}: first {first:.0f}s, re-run {second:.0f}s, peak {peak1:.2f} GB", file=sys.stderr)

    lines = [
        "machine: " + describe("evaluate=" + ("no" if args.no_evaluate else "yes")),
        "",
        "| dataset | first run (s) | unchanged re-run (s) | peak RSS (GB) | ok |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {a:.0f} | {b:.0f} | {m:.2f} | {'yes' if ok else 'NO'} |" for n, a, b, m, ok in rows]
    table = "\n".join(lines)
    print(table)
    if args.save:
        args.save.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
