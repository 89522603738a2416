"""Learning curves on distilled sets: does a fresh SNN learn more from PACE's sets than from their real start?

Reads the sets that ``benchmarks/distillation.py --save DIR`` kept (``ipc<N>_<method>.npz``) and trains a fresh
default SNN on each with the same protocol as that benchmark (``--steps`` optimiser steps at batch
min(``--batch``, set size), lr ``--lr``), recording the float (QAT) test accuracy on ``--test`` real
test digits (a fixed random subset: the split is ordered by class) after every epoch, and the deployed integer accuracy on the whole test split at the end. Also
plots the distillation loss and the gradient norm on the logits per step from the benchmark's JSON.

    .venv/bin/python benchmarks/distillation_curves.py --sets DIR --results benchmarks/results/distillation.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.snn import golden_spikes, predict  # noqa: E402
from pipeline.config import RunConfig, apply_overrides  # noqa: E402
from pipeline.data import registry, sets  # noqa: E402
from pipeline.train import loop  # noqa: E402
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", type=Path, required=True, help="folder of ipc<N>_<method>.npz sets")
    ap.add_argument("--results", type=Path, help="distillation JSON with loss_history / grad_norms rows")
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--methods", nargs="+", default=["pace-init", "pace-continuous", "pace"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--lr", type=float, default=3e-3, help="the evaluation protocol's (chosen on validation)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/distillation_curves"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = registry.resolve(apply_overrides(RunConfig(), []))
    data = sets.load(cfg.data)
    te, sub = data.test, (data.val.frames, data.val.labels)         # the per-epoch curve: validation
    rows = []
    for ipc in args.ipc:
        for method in args.methods:
            path = args.sets / f"ipc{ipc}_{method}.npz"
            if not path.exists():
                print(f"skipping {path}: not there")
                continue
            with np.load(path, allow_pickle=False) as z:
                frames, labels = z["frames"], z["labels"]
            batch = min(args.batch, len(labels))
            per_epoch = math.ceil(len(labels) / batch)
            epochs = max(1, math.ceil(args.steps / per_epoch))
            for seed in args.seeds:
                c = replace(cfg, train=replace(cfg.train, epochs=epochs, batch_size=batch, lr=args.lr, seed=seed))
                with contextlib.redirect_stdout(io.StringIO()):
                    res = loop.train(c, frames, labels, len(te.classes), monitor=sub)
                acc = float((predict(golden_spikes(res.model.deployed(), te.frames)[-1]) == te.labels).mean())
                rows.append({"ipc": ipc, "method": method, "seed": seed, "steps_per_epoch": per_epoch,
                             "val_curve": list(res.epoch_accuracy), "deployed_accuracy": acc})
                print(f"IPC {ipc} {method} seed {seed}: deployed {acc:.4f}, float curve end "
                      f"{res.epoch_accuracy[-1]:.4f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out.with_suffix(".json"), {"setup": vars(args) | {"sets": str(args.sets),
                                                         "results": str(args.results), "out": str(args.out)},
                                                         "rows": rows}, indent=2)
    ipcs = sorted({r["ipc"] for r in rows})
    history = []
    if args.results and args.results.exists():
        history = [r for r in json.loads(args.results.read_text())["rows"] if r.get("grad_norms")]
    ncols = len(ipcs) + (2 if history else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 3.6))
    axes = np.atleast_1d(axes)
    for ax, ipc in zip(axes, ipcs):
        for method in args.methods:
            rs = [r for r in rows if r["ipc"] == ipc and r["method"] == method]
            if not rs:
                continue
            curve = 100 * np.mean([r["val_curve"] for r in rs], axis=0)
            steps = (np.arange(len(curve)) + 1) * rs[0]["steps_per_epoch"]
            ax.plot(steps, curve, label=f"{method} (deployed {100 * np.mean([r['deployed_accuracy'] for r in rs]):.1f})")
        ax.set(title=f"IPC {ipc}: trained only on the set", xlabel="optimiser step",
               ylabel=f"float test accuracy, % ({args.test} random digits)")
        ax.legend(fontsize=7)
    if history:
        for r in history:
            if r["method"] in ("pace", "dm", "cf", "pace-peq"):
                axes[-2].plot(r["loss_history"], label=f"{r['method']} IPC {r['ipc']}", lw=0.8)
                axes[-1].semilogy(r["grad_norms"], label=f"{r['method']} IPC {r['ipc']}", lw=0.8)
        axes[-2].set(title="distillation loss", xlabel="step")
        axes[-1].set(title="gradient norm on the logits", xlabel="step")
        axes[-2].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main()
