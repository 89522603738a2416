"""Events against occupied pixel-steps per recording: what a real recording holds and what the network sees.

A frame bin counts a pixel's events; the SNN's input spikes once in a bin that has at least one
(``models/snn.py: pad_input``, ``min(count, 1)``), and a distilled set stores exactly those binary spikes. So a
distilled set's event count is to be compared with the real recordings' occupied pixel-steps, not with their
event counts. This measures both on the real training split (the recordings every set is drawn from or distilled
from), and the share of occupied pixel-steps that hold more than one event.

    .venv/bin/python benchmarks/occupancy.py --dataset fashion --out benchmarks/results/occupancy_fashion
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import harness  # noqa: E402  (benchmarks/harness.py: atomic results files)
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets


def measure(frames: np.ndarray, chunk: int = 2000) -> dict:
    events, occupied, multiple = [], [], []
    for i in range(0, len(frames), chunk):
        f = frames[i:i + chunk].reshape(len(frames[i:i + chunk]), -1)
        events.append(f.sum(axis=1, dtype=np.int64))
        occupied.append((f > 0).sum(axis=1))
        multiple.append((f > 1).sum(axis=1))
    events, occupied, multiple = (np.concatenate(a) for a in (events, occupied, multiple))
    return {"recordings": len(frames), "pixel_steps": int(np.prod(frames.shape[1:])),
            "events_per_recording": float(events.mean()), "occupied_per_recording": float(occupied.mean()),
            "events_per_occupied": float(events.sum() / max(occupied.sum(), 1)),
            "occupied_with_several": float(multiple.sum() / max(occupied.sum(), 1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/occupancy"))
    args = ap.parse_args()
    cfg = registry.resolve(apply_overrides(RunConfig(), [f"data.name={args.dataset}"]))
    tr, _ = sets.real_train(cfg.data)
    m = {"dataset": args.dataset, "split": "train (validation carved out)", **measure(tr.frames)}
    text = (f"{args.dataset}, real training split ({m['recordings']} recordings, {m['pixel_steps']} pixel-steps "
            f"each)\nevents per recording {m['events_per_recording']:.0f}\n"
            f"occupied pixel-steps per recording {m['occupied_per_recording']:.0f} (what the network sees)\n"
            f"events per occupied pixel-step {m['events_per_occupied']:.2f}; occupied pixel-steps with more than "
            f"one event {100 * m['occupied_with_several']:.1f}%")
    print(text)
    harness.write_json(args.out.with_suffix(".json"), m)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
