"""The same evaluation on CUDA and on CPU: speed-up of training and agreement of the metrics.

Takes an exported graph and its text features (written by a refresh: ``export-*.pt`` and
``features-*.npz`` under ``<out>/cache/<domain>/``) so it needs neither the text models nor the
graph store: only ``gnn``. Runs kgrec and PyG's LightGCN through :func:`gnn.comparison.compare_models`
once per device on the same split and prints one table.

    python benchmarks/gpu_check.py EXPORT.pt FEATURES.npz [--devices cuda,cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.steps import load_features  # noqa: E402 (numpy/pandas only: runs where Prefect is absent)
from gnn.comparison import ComparisonConfig, compare_models  # noqa: E402
from gnn.training import TrainConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", type=Path)
    ap.add_argument("features", type=Path)
    ap.add_argument("--devices", default="cuda,cpu")
    ap.add_argument("--epochs", type=int, default=60)
    args = ap.parse_args()
    data = torch.load(args.export, weights_only=False)["data"]
    features = load_features(args.features)
    print(f"torch {torch.__version__}; cuda: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
          f"cpu threads {torch.get_num_threads()}", flush=True)
    results = {}
    for dev in args.devices.split(","):
        cfg = ComparisonConfig(kgrec=TrainConfig(device=dev, epochs=args.epochs),
                               lightgcn=TrainConfig(loss="bpr", lr=0.005, device=dev, epochs=args.epochs),
                               baselines=("popular", "lightgcn"), ablations=(), reference_rows=False,
                               timing_rounds=3)
        t0 = time.perf_counter()
        res = compare_models(data, features, cfg)
        wall = time.perf_counter() - t0
        results[dev] = (res, wall)
        tab = res.table.set_index(["model", "slice"])
        print(f"\n[{dev}] wall {wall:.1f}s; kgrec s/epoch {res.timings['kgrec']['s_per_epoch']:.3f}; "
              f"lightgcn s/epoch {res.timings['lightgcn']['s_per_epoch']:.3f}", flush=True)
        print(tab[["ndcg@20", "recall@20"]].round(4).to_string(), flush=True)
    if len(results) == 2:
        (a, (ra, wa)), (b, (rb, wb)) = results.items()
        ta = ra.table.set_index(["model", "slice"])["ndcg@20"]
        tb = rb.table.set_index(["model", "slice"])["ndcg@20"]
        diff = (ta - tb).abs().max()
        print(f"\n| | {a} | {b} | ratio |\n|---|---|---|---|")
        print(f"| wall, whole evaluation (s) | {wa:.1f} | {wb:.1f} | {wb / wa:.2f}x |")
        for m in ("kgrec", "lightgcn"):
            ea, eb = ra.timings[m]["s_per_epoch"], rb.timings[m]["s_per_epoch"]
            print(f"| {m} s/epoch | {ea:.3f} | {eb:.3f} | {eb / ea:.2f}x |")
        print(f"| kgrec all-slice NDCG@20 | {ta[('kgrec', 'all')]:.4f} | {tb[('kgrec', 'all')]:.4f} | |")
        print(f"\nlargest NDCG@20 difference between devices over every (model, slice): {diff:.4f}")


if __name__ == "__main__":
    main()
