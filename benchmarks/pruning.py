"""Data pruning side by side: SADP against full data and the baselines, at several ratios and seeds.

For each (method, ratio, seed): train the default model, then measure the accuracy of the deployed integer
model (golden, int64) on the whole test split, the examples processed, the training wall time (sum of epoch
times, score bookkeeping included), the speed-up over full data with the same seed, and the theoretical
speed-up, full work / work done (1 / (1 - f r) for a fixed-size method pruning a fraction f of the epochs).
Prints a table, writes JSON and a plot.

    .venv/bin/python benchmarks/pruning.py                       # the full grid (hours on 2 cores)
    .venv/bin/python benchmarks/pruning.py --ratios 0.5 --seeds 0 1 --out benchmarks/results/pruning_r05
    .venv/bin/python benchmarks/pruning.py --dataset fashion ... # where Debian's dataset-fashion-mnist is installed
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.snn import golden_spikes, predict  # noqa: E402
from pipeline import train  # noqa: E402
from pipeline.config import SELECT_METHODS, RunConfig, apply_overrides  # noqa: E402
from settings import DENSE  # noqa: E402
from pipeline.data import dataset, registry  # noqa: E402


def run_one(base: list[str], method: str, ratio: float, seed: int, data) -> dict:
    items = [f"select.method={method}", f"select.seed={seed}", f"train.seed={seed}"]
    items += [f"select.ratio={ratio}"] if method != "full" else []
    cfg = registry.resolve(apply_overrides(RunConfig(), base + items))
    (tr, te) = data
    res = train.train(cfg, tr.frames, tr.labels, len(tr.classes))
    return {"method": method, "ratio": ratio if method != "full" else 0.0, "seed": seed,
            "accuracy": float((predict(golden_spikes(res.model.deployed(), te.frames)[-1]) == te.labels).mean()),
            "examples_processed": res.examples_processed, "train_seconds": float(sum(res.epoch_seconds)),
            # the work ratio: 1 / (1 - f r) for fixed-size methods with a fraction f of pruned epochs
            "theoretical_speedup": len(tr.labels) * cfg.train.epochs / res.examples_processed}


def table(rows: list[dict]) -> str:
    lines = [f"{'method':15s} {'ratio':>5s} {'accuracy':>16s} {'examples':>9s} {'train s':>8s} "
             f"{'speed-up':>8s} {'theory':>7s}"]
    keys = sorted({(r["method"], r["ratio"]) for r in rows}, key=lambda k: (k[1], SELECT_METHODS.index(k[0])))
    for method, ratio in keys:
        rs = [r for r in rows if (r["method"], r["ratio"]) == (method, ratio)]
        acc = np.array([r["accuracy"] for r in rs])
        lines.append(f"{method:15s} {ratio:5.2f} {acc.mean():8.4f} +- {acc.std():.4f} "
                     f"{np.mean([r['examples_processed'] for r in rs]):9.0f} "
                     f"{np.mean([r['train_seconds'] for r in rs]):8.1f} {np.mean([r['speedup'] for r in rs]):7.2f}x "
                     f"{rs[0]['theoretical_speedup']:6.2f}x")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in SELECT_METHODS:
        rs = [r for r in rows if r["method"] == method]
        if rs:
            ax.scatter([r["examples_processed"] for r in rs], [100 * r["accuracy"] for r in rs], label=method,
                       marker="*" if method == "sadp" else "o", s=90 if method == "sadp" else 30)
    ax.set(xlabel="training examples processed", ylabel="deployed (integer) test accuracy, %",
           title="data pruning: accuracy vs training work")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--methods", nargs="+", default=[m for m in SELECT_METHODS if m != "full"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pruning"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    base = [f"data.name={args.dataset}", *DENSE] + args.overrides
    data = dataset.load(registry.resolve(apply_overrides(RunConfig(), base)).data)
    rows, start = [], time.perf_counter()
    for seed in args.seeds:
        full = run_one(base, "full", 0.0, seed, data)
        full["speedup"] = 1.0
        rows.append(full)
        for ratio in args.ratios:
            for method in args.methods:
                r = run_one(base, method, ratio, seed, data)
                r["speedup"] = full["train_seconds"] / r["train_seconds"]
                rows.append(r)
                print(f"[{time.perf_counter() - start:6.0f} s] {method} r={ratio} seed={seed}: "
                      f"accuracy {r['accuracy']:.4f}, {r['speedup']:.2f}x", flush=True)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                                         "rows": rows}, indent=2))
    plot(rows, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
