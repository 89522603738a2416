"""Training memory and time side by side: BPTT, SLTT and SLTT-K, at several numbers of time steps T.

Memory and time: each (trainer, T) runs in its own subprocess, which frames the data at T, then trains one epoch
on ``--samples`` examples and reports the peak of the retained autograd graph (bytes of tensors saved for
backward, from ``pipeline.sltt.SavedTensorMeter``), the peak resident memory the epoch added over the process
before training (``ru_maxrss``), and the epoch time. Accuracy: the default model trained with each trainer for
``--epochs`` epochs at the default T, tested as the deployed integer model (golden) on the whole test split.
Prints a table and the ratios, writes JSON and a plot.

    .venv/bin/python benchmarks/training.py                      # T = 8, 16, 32, 64 and accuracy (about 30 min)
    .venv/bin/python benchmarks/training.py --T 8 32 --no-accuracy
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.snn import golden_spikes, predict  # noqa: E402
from pipeline import sltt, train  # noqa: E402
from pipeline.config import TRAIN_METHODS, RunConfig, apply_overrides  # noqa: E402
from settings import DENSE  # noqa: E402
from pipeline.data import dataset, registry  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def one(method: str, T: int, samples: int, k: int, overrides: list[str]) -> dict:
    """One epoch of ``method`` at T bins, in this process: memory and time."""
    cfg = registry.resolve(apply_overrides(RunConfig(), [*DENSE, f"data.n_bins={T}",
                                                         f"data.n_train={samples}", f"train.method={method}",
                                                         f"train.k={k}", "train.epochs=1", *overrides]))
    tr = dataset.load_split(cfg.data, "train")
    before = rss_bytes()
    with contextlib.redirect_stdout(io.StringIO()), sltt.SavedTensorMeter() as meter:
        t0 = time.perf_counter()
        train.train(cfg, tr.frames, tr.labels, len(tr.classes))
        seconds = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"method": method, "T": T, "samples": len(tr.labels), "epoch_seconds": seconds,
            "graph_peak_bytes": meter.peak, "rss_added_bytes": max(0, peak_rss - before)}


def accuracy(method: str, epochs: int, k: int, overrides: list[str]) -> dict:
    cfg = registry.resolve(apply_overrides(RunConfig(), [*DENSE, f"train.method={method}", f"train.k={k}",
                                                         f"train.epochs={epochs}", *overrides]))
    tr, te = dataset.load_split(cfg.data, "train"), dataset.load_split(cfg.data, "test")
    with contextlib.redirect_stdout(io.StringIO()):
        res = train.train(cfg, tr.frames, tr.labels, len(tr.classes))
    acc = float((predict(golden_spikes(res.model.deployed(), te.frames)[-1]) == te.labels).mean())
    return {"method": method, "epochs": epochs, "T": cfg.data.n_bins, "accuracy": acc,
            "train_seconds": float(sum(res.epoch_seconds)), "epoch_loss": list(res.epoch_loss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--methods", nargs="+", default=list(TRAIN_METHODS))
    ap.add_argument("--samples", type=int, default=512, help="training examples in the timed epoch")
    ap.add_argument("--k", type=int, default=2, help="SLTT-K's K")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of the accuracy runs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/training"))
    ap.add_argument("--one", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.samples, args.k, args.overrides)))
        return

    rows = []
    for T in args.T:
        for method in args.methods:
            cmd = [sys.executable, __file__, "--one", method, str(T), "--samples", str(args.samples),
                   "--k", str(args.k)] + [a for o in args.overrides for a in ("--set", o)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{method} at T={T} failed:\n{proc.stderr[-2000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"T={T:3d} {method:7s} epoch {r['epoch_seconds']:6.2f} s, graph peak "
                  f"{r['graph_peak_bytes'] / 2**20:8.1f} MiB, RSS added {r['rss_added_bytes'] / 2**20:8.1f} MiB",
                  flush=True)
    accs = []
    if not args.no_accuracy:
        for method in args.methods:
            for seed in args.seeds:
                accs.append(accuracy(method, args.epochs, args.k, args.overrides + [f"train.seed={seed}"]))
                print(f"{method}: accuracy {accs[-1]['accuracy']:.4f} after {args.epochs} epochs, "
                      f"{accs[-1]['train_seconds']:.1f} s", flush=True)

    lines = [f"{'T':>4s} {'trainer':8s} {'epoch s':>8s} {'graph MiB':>10s} {'RSS+ MiB':>9s} "
             f"{'graph vs T0':>11s} {'time vs BPTT':>12s}"]
    T0 = min(args.T)
    for r in rows:
        base = next(x for x in rows if x["method"] == r["method"] and x["T"] == T0)
        bptt = next((x for x in rows if x["method"] == "bptt" and x["T"] == r["T"]), r)
        lines.append(f"{r['T']:4d} {r['method']:8s} {r['epoch_seconds']:8.2f} {r['graph_peak_bytes'] / 2**20:10.1f} "
                     f"{r['rss_added_bytes'] / 2**20:9.1f} {r['graph_peak_bytes'] / base['graph_peak_bytes']:10.2f}x "
                     f"{r['epoch_seconds'] / bptt['epoch_seconds']:11.2f}x")
    for method in args.methods:
        a = [x["accuracy"] for x in accs if x["method"] == method]
        if a:
            lines.append(f"accuracy {method:7s}: {np.mean(a):.4f} (seeds {args.seeds}, {args.epochs} epochs)")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"setup": vars(args) | {"out": str(args.out)},
                                                         "memory_time": rows, "accuracy": accs}, indent=2))
    args.out.with_suffix(".txt").write_text(text + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method in args.methods:
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["T"])
        axes[0].plot([r["T"] for r in rs], [r["graph_peak_bytes"] / 2**20 for r in rs], marker="o", label=method)
        axes[1].plot([r["T"] for r in rs], [r["epoch_seconds"] for r in rs], marker="o", label=method)
    axes[0].set(xlabel="time steps T", ylabel="peak retained graph, MiB", title="training memory")
    axes[1].set(xlabel="time steps T", ylabel=f"seconds per epoch ({args.samples} samples)", title="training time")
    for ax in axes:
        ax.legend()
    fig.savefig(args.out.with_suffix(".png"), dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
