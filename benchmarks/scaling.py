"""Scaling out, side by side in one run: training with 1 and 2 processes (torchrun, DDP on gloo), Lava
verification with 1, 2 and N workers, and the integer reference. Prints a table with ratios and writes JSON.

Training: ``--epochs`` epochs of the default model on ``--train`` digits, launched as ``python -m pipeline run
--target reference`` with and without ``torch.distributed.run --nproc-per-node 2``; samples per second from the
epoch times in report.json. Verification: the trained network of the 1-process run on ``--verify`` test
samples; every configuration must give identical spikes.

    .venv/bin/python benchmarks/scaling.py [--train 1000 --epochs 2 --verify 100 1000 --workers 1 2 4 --repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hardware.backends import lava
from hardware.graph import read
from hardware.graph.ir import input_spikes
from hardware.judge import equivalence
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import dataset, registry
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

ROOT = Path(__file__).resolve().parents[1]


def train_run(out: Path, ranks: int, n_train: int, epochs: int) -> dict:
    launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks)] if ranks > 1 else []
    cmd = [sys.executable, *launcher, "-m", "pipeline", "run", "--target", "reference", "--out", str(out),
           "--samples", "10", "--set", f"data.n_train={n_train}", "--set", f"train.epochs={epochs}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"training with {ranks} process(es) failed:\n{proc.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    seconds = sum(report["training"]["epoch_seconds"])
    return {"processes": ranks, "train_seconds": seconds, "wall_seconds": time.perf_counter() - t0,
            "samples_per_s": report["training"]["examples_processed"] / seconds,
            "accuracy_10": report["accuracy"]["golden"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--verify", type=int, nargs="+", default=[100, 1000], help="test samples to verify")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, os.cpu_count() or 2])
    ap.add_argument("--repeats", type=int, default=3, help="Lava timings per configuration (median reported)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scaling-"))
    training = [train_run(tmp / f"train{r}", r, args.train, args.epochs) for r in (1, 2)]
    for t in training:
        print(f"training, {t['processes']} process(es): {t['samples_per_s']:.1f} samples/s", flush=True)

    net = read.load(tmp / "train1" / "model.nir")
    cfg = registry.resolve(apply_overrides(RunConfig(), []))
    test = input_spikes(net, dataset.load_split(cfg.data, "test").frames)
    # warm-up, untimed: starts the forkserver the Lava workers fork from (once per program)
    lava.simulate(net, test[:1], workers=1, progress=False)
    verify = []
    for n in args.verify:
        x = test[:n]
        t0 = time.perf_counter()
        expected, n_steps = equivalence.reference_expected(net, x), x.shape[1]
        verify.append({"samples": n, "backend": "reference", "workers": 1, "seconds": time.perf_counter() - t0,
                       "identical": True})
        for w in sorted(set(args.workers)):
            times, same = [], True
            for _ in range(args.repeats):          # alternating would be fairer still; the median evens it out
                t0 = time.perf_counter()
                spikes = lava.simulate(net, x, workers=w, chunk=250, progress=False)
                times.append(time.perf_counter() - t0)
                v = equivalence.compare(list(net.populations), expected, spikes, n_steps, "lava", "lava")
                same &= v.identical == v.compared
            verify.append({"samples": n, "backend": "lava", "workers": w, "seconds": float(np.median(times)),
                           "runs": times, "identical": bool(same)})
            print(f"lava, {n} samples, {w} worker(s): {n / verify[-1]['seconds']:.1f} samples/s", flush=True)

    lines = [f"{'training':28s} {'samples/s':>10s} {'vs 1 process':>13s}"]
    for t in training:
        lines.append(f"{str(t['processes']) + ' process(es), gloo DDP':28s} {t['samples_per_s']:10.1f} "
                     f"{t['samples_per_s'] / training[0]['samples_per_s']:12.2f}x")
    for n in args.verify:
        rows = [v for v in verify if v["samples"] == n]
        lava1 = next(v for v in rows if v["backend"] == "lava" and v["workers"] == min(args.workers))
        lines.append(f"{'verification (' + str(n) + ' samples)':28s} {'samples/s':>10s} {'vs 1 worker':>13s} "
                     f"{'identical':>9s}   median of {args.repeats}")
        for v in rows:
            name = "integer reference (numpy)" if v["backend"] == "reference" else f"lava, {v['workers']} worker(s)"
            lines.append(f"{name:28s} {n / v['seconds']:10.1f} {lava1['seconds'] / v['seconds']:12.2f}x "
                         f"{str(v['identical']):>9s}")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out.with_suffix(".json"), {"setup": {k: str(v) for k, v in vars(args).items()},
                                                         "training": training, "verification": verify}, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
