"""Lava verification throughput, side by side in one run: the default network (conv, or ``--arch dense``) on
Lava's ``Conv`` against the same network with every convolution unrolled into a ``Dense`` matrix, many samples
per network against one network per sample, 1 and 2 workers, and the int64 numpy reference. Prints samples per
second and ratios, checks that every configuration gives identical spikes, writes JSON.

The network has the default run's shape and integer parameters with random int8 weights, on random input of the
built-in digits' density (8.3% of pixel-bins active at T = 8, measured on the test split), T = the default's
data.n_bins, plus one step per layer.

    .venv/bin/python benchmarks/lava_throughput.py [--samples 200 --arch conv --out benchmarks/results/lava_throughput]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from export.nir_export import to_nir
from hardware.backends import lava, reference
from hardware.graph import read
from hardware.graph.ir import Conv, Dense, input_spikes
from hardware.graph.linear_ops import conv_matrix
from hardware.judge import equivalence
from pipeline.architecture import build_model
from pipeline.config import RunConfig, apply_overrides
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)


def make_case(n_samples: int, arch: str, seed: int = 0):
    """The default model's shapes with random int8 weights (scaled so that every layer spikes), and frames."""
    cfg = apply_overrides(RunConfig(), [f"model.arch={arch}", f"train.seed={seed}"])
    model = build_model(cfg, (2, 34, 34), 10)
    with torch.no_grad():
        for w in model.weights:
            w.mul_(2.0)
    t = cfg.data.n_bins
    net = read.load(to_nir(model.deployed(), 0.31 / t, t))
    frames = (np.random.default_rng(seed).random((n_samples, t, 2, 34, 34)) < 0.083).astype(np.uint8)
    return net, input_spikes(net, frames)


def unrolled(net):
    """The same network with each convolution as its dense (out, in) matrix of integer mantissas."""
    projections = tuple(
        replace(p, synapse=Dense(np.rint(conv_matrix(replace(p.synapse, weight=p.synapse.weight.astype(float))))
                                 .astype(np.int64), p.synapse.exp)) if isinstance(p.synapse, Conv) else p
        for p in net.projections)
    return replace(net, projections=projections)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def identical(net, x, trace) -> bool:
    """Every spike Lava computed (tails past each sample's end included) equals the integer reference's."""
    v = equivalence.compare(list(net.populations), equivalence.reference_expected(net, x), trace, x.shape[1],
                            "lava", "lava")
    return v.identical == v.compared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--per-sample", type=int, default=6, help="samples run with one network each")
    ap.add_argument("--arch", default="conv", choices=["conv", "dense"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lava_throughput"))
    args = ap.parse_args()
    net, x = make_case(args.samples, args.arch)
    lava.simulate(net, x[:1], workers=1, progress=False)              # warm-up: starts the forkserver
    ref, t = timed(reference.simulate, net, x)
    rows = {"reference (numpy int64)": (args.samples, t)}
    few = x[: args.per_sample].copy()
    few[:, -1, 0] = 1                  # a busy last step: one network per sample (see lava.batch_blocker)
    single, t = timed(lava.simulate, net, few, workers=1, progress=False)
    rows["lava, one network per sample"] = (len(few), t)
    checks = [(few, single)]
    for w in (1, 2):
        out, t = timed(lava.simulate, net, x, workers=w, chunk=250, progress=False)
        rows[f"lava, many samples per network, {w} worker(s)"] = (args.samples, t)
        checks.append((x, out))
    if args.arch == "conv":
        dense = unrolled(net)
        for w in (1, 2):
            out, t = timed(lava.simulate, dense, x, workers=w, chunk=250, progress=False)
            rows[f"lava, convolutions unrolled to Dense, {w} worker(s)"] = (args.samples, t)
            checks.append((x, out))
    same = all(identical(net, xs, out) for xs, out in checks)
    base = rows["lava, many samples per network, 1 worker(s)"]
    lines = [f"{args.arch} network, {', '.join(f'{k} {p.size}' for k, p in net.populations.items())} neurons; "
             f"{x.shape[1]} steps per sample",
             f"{'configuration':52s} {'samples':>8s} {'samples/s':>10s} {'vs 1 worker':>12s}"]
    for name, (n, secs, *_) in rows.items():
        lines.append(f"{name:52s} {n:8d} {n / secs:10.1f} {(base[1] / base[0]) / (secs / n):11.2f}x")
    lines.append(f"identical spikes in every configuration: {same}")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out.with_suffix(".json"), {"setup": {k: str(v) for k, v in vars(args).items()}, "identical": bool(same),
         "rows": {k: {"samples": n, "seconds": round(s, 3), "samples_per_s": round(n / s, 2)}
                  for k, (n, s, *_) in rows.items()}}, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
