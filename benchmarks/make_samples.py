"""Regenerate the bundled samples in ``quality/samples/``, check them, or time a big generation.

The samples are committed so the demo and the tests run without network or private data; this
script is how they are (re)made. Their configs live in ``quality.synth.BUNDLED_SAMPLES``.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/make_samples.py            # rewrite the samples
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/make_samples.py --check    # committed == regenerated?
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/make_samples.py --bench ecommerce \\
        --interactions 1000000 --users 50000 --items 20000                 # time + peak memory

``--bench`` runs each generation in a fresh process so the peak resident memory it reports
belongs to that generation alone (the interpreter and its imports included).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_BENCH_CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from quality.synth import SynthConfig, generate_dataset
cfg = SynthConfig.model_validate_json(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    generate_dataset(cfg, Path(tmp) / cfg.domain)
    seconds = time.perf_counter() - t
    size = sum(p.stat().st_size for p in (Path(tmp) / cfg.domain).iterdir())
print(json.dumps({"seconds": seconds, "bytes": size,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def regenerate(out: Path | None) -> int:
    from quality.synth import write_bundled_samples

    for domain, path in write_bundled_samples(out).items():
        size = sum(p.stat().st_size for p in path.iterdir())
        print(f"{domain:10s} -> {path} ({size / 1024:.0f} KiB)")
    return 0


def check() -> int:
    """Exit 1 when the committed samples differ from what the generator makes today."""
    from quality.synth import BUNDLED_SAMPLES, sample_path, write_bundled_samples

    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write_bundled_samples(Path(tmp))
        for domain in BUNDLED_SAMPLES:
            names = sorted(p.name for p in fresh[domain].iterdir())
            have = sample_path(domain)
            if not have.is_dir() or sorted(p.name for p in have.iterdir()) != names:
                stale.append(f"{domain}: files differ ({names})")
                continue
            _, mismatch, errors = filecmp.cmpfiles(fresh[domain], have, names, shallow=False)
            stale += [f"{domain}/{n}" for n in mismatch + errors]
    if stale:
        print("bundled samples are stale; run benchmarks/make_samples.py and commit:\n  " + "\n  ".join(stale))
        return 1
    print("bundled samples match the generator")
    return 0


def bench(domain: str, users: int, items: int, interactions: int, fmt: str) -> int:
    from quality.synth import SynthConfig

    cfg = SynthConfig(domain=domain, n_users=users, n_items=items, n_interactions=interactions,
                      seed=1, fmt=fmt)
    res = subprocess.run([sys.executable, "-c", _BENCH_CHILD, cfg.model_dump_json()], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"{domain} {fmt}: {interactions:,} interactions, {users:,} users, {items:,} items -> "
          f"{stats['seconds']:.1f} s, peak RSS {stats['peak_rss_mb']:.0f} MB, "
          f"{stats['bytes'] / 1e6:.0f} MB on disk")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the samples here instead of quality/samples")
    ap.add_argument("--check", action="store_true", help="compare the committed samples with a fresh run")
    ap.add_argument("--bench", nargs="*", metavar="DOMAIN", help="time big generations (all domains if none named)")
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--fmt", choices=("csv", "parquet"), default="csv")
    args = ap.parse_args(argv)
    if args.check:
        return check()
    if args.bench is not None:
        from quality.contract import DOMAINS

        for domain in args.bench or DOMAINS:
            bench(domain, args.users, args.items, args.interactions, args.fmt)
        return 0
    return regenerate(args.out)


if __name__ == "__main__":
    sys.exit(main())
