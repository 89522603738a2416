"""Lava verification throughput: one network per sample vs many samples per network vs parallel workers.

Measures, side by side in one run, samples per second of the real Lava fixed_pt simulation for a network of the
default run's shape (2312 -> 256 -> 10, T = 16 + 2 steps) on N-MNIST-density random input, and of the int64
numpy reference, and prints ratios. Also checks that every configuration gives identical spikes.

    .venv/bin/python benchmarks/lava_throughput.py [--samples 500]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hardware import lava_backend, reference
from hardware.graph import Chain, Layer


def make_case(n_samples: int, seed: int = 0) -> tuple[Chain, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = (Layer("fc1", rng.integers(-40, 48, (256, 2312)), 0, 1024, 256, 256, 0),
              Layer("fc2", rng.integers(-40, 48, (10, 256)), 0, 1024, 256, 256, 0))
    frames = (rng.random((n_samples, 16, 2, 34, 34)) < 0.055).astype(np.uint8)   # ~5.5% active, as the digits
    return Chain((2, 34, 34), layers, 16, 18, 0.019375), frames


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--per-sample", type=int, default=10, help="samples run with one network each")
    args = ap.parse_args()
    chain, frames = make_case(args.samples)
    ref, t_ref = timed(reference.simulate, chain, frames)
    rows = {"reference (numpy int64)": (args.samples, t_ref)}
    few = frames[: args.per_sample]
    single, t = timed(lava_backend.simulate, chain, few, workers=1, chunk=1, progress=False)
    rows["lava, one network per sample"] = (len(few), t)
    one, t = timed(lava_backend.simulate, chain, frames, workers=1, chunk=250, progress=False)
    rows["lava, 250 samples per network, 1 worker"] = (args.samples, t)
    two, t = timed(lava_backend.simulate, chain, frames, workers=2, chunk=250, progress=False)
    rows["lava, 250 samples per network, 2 workers"] = (args.samples, t)
    same = all(np.array_equal(r, o) and np.array_equal(r, w) and np.array_equal(r[: len(few)], s)
               for r, o, w, s in zip(ref, one, two, single))
    base = rows["lava, one network per sample"][1] / args.per_sample
    print(f"{'configuration':45s} {'samples':>8s} {'s/sample':>10s} {'samples/s':>10s} {'vs per-sample':>14s}")
    for name, (n, secs) in rows.items():
        print(f"{name:45s} {n:8d} {secs / n:10.4f} {n / secs:10.1f} {base / (secs / n):13.1f}x")
    print(f"identical spikes in every configuration: {same}")
    print(json.dumps({k: {"samples": n, "seconds": round(s, 3)} for k, (n, s) in rows.items()}))


if __name__ == "__main__":
    main()
