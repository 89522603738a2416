"""The cochlea model's spiking stage, chosen on validation speakers: how well a small non-spiking GRU (64 -> 128
-> 20, 20 epochs, Adam 3e-3, seed 0) learns the spoken digits from the binary frames each design gives.

Protocol: the training speakers of ``pipeline/data/speech.py`` split into 14 for training and 4 held out for
validation (the test speakers are not looked at), 6 recordings of each word per training speaker and 6 per
validation speaker, 50 bins of 20 ms, binary frames (count > 0) as the SNN sees them. Variants: no adaptation
(the first model), and adaptation time constant tau, floor and threshold theta (``pipeline/data/cochlea.py``).

    .venv/bin/python benchmarks/cochlea_design.py
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.data import speech
from pipeline.data.cochlea import Cochlea
from pipeline.data.events import make_events
from pipeline.data.frames import to_frames
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

VARIANTS = {"no adaptation (floor 0.02, theta 4)": dict(tau=0.0, floor=0.02, theta=4.0),
            "tau 0.05 s, floor 0, theta 1": dict(tau=0.05, floor=0.0, theta=1.0),
            "tau 0.03 s, floor 0.05, theta 0.5": dict(tau=0.03, floor=0.05, theta=0.5),
            "tau 0.1 s, floor 0, theta 2": dict(tau=0.1, floor=0.0, theta=2.0),
            "tau 0.05 s, floor 0.05, theta 1": dict(tau=0.05, floor=0.05, theta=1.0)}
OUT = Path("benchmarks/results/cochlea_design")


def frames(speakers: tuple[str, ...], repeats: int, c: Cochlea, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for u in speech.plan(speakers, repeats, rng):
        t, units = c(speech.synthesise(u, rng))
        ev = make_events(units, np.zeros_like(units), np.rint(t * 1e6).astype(np.int64), np.zeros_like(units))
        xs.append(to_frames(ev, 50, 1_000_000, (c.channels,)))
        ys.append(u.label)
    return np.stack(xs), np.array(ys)


def gru_accuracy(x, y, xv, yv, epochs: int = 20) -> float:
    torch.manual_seed(0)
    gru, out = nn.GRU(x.shape[2], 128, batch_first=True), nn.Linear(128, 20)
    opt = torch.optim.Adam(list(gru.parameters()) + list(out.parameters()), 3e-3)
    x, y, xv, yv = (torch.from_numpy(a) for a in (x, y, xv, yv))
    x, xv = x.float().clamp(max=1), xv.float().clamp(max=1)
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for b in range(0, len(y), 64):
            i = perm[b:b + 64]
            loss = F.cross_entropy(out(gru(x[i])[0][:, -1]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((out(gru(xv)[0][:, -1]).argmax(1) == yv).float().mean())


def main() -> None:
    torch.set_num_threads(2)
    train, val = speech.TRAIN_SPEAKERS[:-4], speech.TRAIN_SPEAKERS[-4:]
    rows = []
    for name, params in VARIANTS.items():
        c = replace(Cochlea(), **params)
        t0 = time.perf_counter()
        x, y = frames(train, 6, c, 0)
        xv, yv = frames(val, 6, c, 1)
        rows.append({"variant": name, **params, "density": float((x > 0).mean()),
                     "events_per_sample": float(x.sum(axis=(1, 2)).mean()),
                     "val_accuracy": gru_accuracy(x, y, xv, yv), "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    lines = [f"{'spiking stage':38s} {'density':>8s} {'events':>7s} {'GRU validation accuracy':>24s}"]
    lines += [f"{r['variant']:38s} {r['density']:8.3f} {r['events_per_sample']:7.0f} {r['val_accuracy']:24.4f}"
              for r in rows]
    harness.write_json(OUT.with_suffix(".json"), {"protocol": __doc__.split("\n\n")[1], "rows": rows}, indent=2)
    harness.write_text(OUT.with_suffix(".txt"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
