"""Choose the recurrent model's training settings for the spoken digits on validation speakers, then measure the test
speakers once, for the chosen setting only.

Protocol: ``data.name=spoken_digits`` (64 cochlea channels, 50 bins of 20 ms), ``model.arch=recurrent``; the
validation split holds out 2 of the 18 training speakers (``data.val_fraction`` = 0.1 of the speakers,
``pipeline/data/split.py``: 3,520 train / 440 validation recordings), so it measures what the test split measures,
voices never heard in training. Each candidate trains with BPTT on seeds 0 and 1; the deployed integer model's
validation accuracy (golden model), mean of the two seeds, picks the winner; the winner's two models are then
tested once on the test speakers (1,080 recordings).

Rows are appended to the results file as they finish, so an interrupted run resumes where it stopped.

    .venv/bin/python benchmarks/choose_temporal.py
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.snn import golden_spikes, predict
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets
from pipeline.train import loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

OUT = Path("benchmarks/results/choose_temporal")
BASE = ["data.name=spoken_digits", "model.arch=recurrent"]
CANDIDATES = {  # candidate: overrides (the current default first)
    "hidden 256, shift 2 channels, 20 epochs": [],
    "no channel shift": ["train.augment_shift=0"],
    "shift 4 channels": ["train.augment_shift=4"],
    "40 epochs": ["train.epochs=40"],
    "hidden 128": ["model.hidden=128"],
    "two recurrent layers of 128": ["model.recurrent_layers=2", "model.hidden=128"],
}
SEEDS = (0, 1)


def deployed_accuracy(model, split) -> float:
    return float((predict(golden_spikes(model.deployed(), split.frames)[-1]) == split.labels).mean())


def main() -> None:
    torch.set_num_threads(2)
    path = OUT.with_suffix(".json")
    rows = json.loads(path.read_text()) if path.exists() else []

    def save(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        harness.write_json(path, rows, indent=1)
    data = sets.load(registry.resolve(apply_overrides(RunConfig(), BASE)).data)
    models = {}
    for name, items in CANDIDATES.items():
        for seed in SEEDS:
            if any(r["candidate"] == name and r["seed"] == seed for r in rows):
                continue
            cfg = registry.resolve(apply_overrides(RunConfig(), BASE + items + [f"train.seed={seed}"]))
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                res = loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes))
            models[name, seed] = res.model
            save({"candidate": name, "overrides": items, "seed": seed,
                  "val_accuracy": deployed_accuracy(res.model, data.val), "train_s": round(time.perf_counter() - t0, 1)})
    mean = {n: float(np.mean([r["val_accuracy"] for r in rows if r["candidate"] == n])) for n in CANDIDATES}
    chosen = max(CANDIDATES, key=mean.get)
    test = []
    for seed in SEEDS:
        if (chosen, seed) not in models:        # resumed: train the winner again (deterministic on CPU)
            cfg = registry.resolve(apply_overrides(RunConfig(), BASE + CANDIDATES[chosen] + [f"train.seed={seed}"]))
            with contextlib.redirect_stdout(io.StringIO()):
                models[chosen, seed] = loop.train(cfg, data.train.frames, data.train.labels,
                                                  len(data.train.classes)).model
        test.append(deployed_accuracy(models[chosen, seed], data.test))
    summary = {"protocol": __doc__.split("\n\n")[1], "train_samples": len(data.train.labels),
               "val_samples": len(data.val.labels), "test_samples": len(data.test.labels),
               "val_speakers": sorted(int(g) for g in np.unique(data.val.groups)),
               "val_accuracy_mean": mean, "chosen": chosen, "chosen_overrides": CANDIDATES[chosen],
               "test_accuracy": test, "test_accuracy_mean": float(np.mean(test))}
    harness.write_json(OUT.with_name(OUT.name + "_summary.json"), summary, indent=1)
    lines = [f"{'candidate (BPTT, seeds 0 and 1)':42s} {'validation speakers':>20s}"]
    lines += [f"{n:42s} {mean[n]:20.4f}" + ("   <- chosen" if n == chosen else "") for n in CANDIDATES]
    lines.append(f"chosen, test speakers once: {np.mean(test):.4f} (seeds {', '.join(f'{a:.4f}' for a in test)})")
    harness.write_text(OUT.with_suffix(".txt"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
