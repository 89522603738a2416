"""Accuracy of the default model, side by side in one run: configurations x seeds, each trained with the run's
own trainer on the built-in digits (4,000 train / 1,000 test) and tested as the deployed integer model (the
golden model) and as the float QAT forward pass; mean and spread over seeds, float-vs-integer gap, training time.

``--ceiling`` adds what a non-spiking float CNN (ReLU, max pooling, dropout; 30 epochs, same split and shift
augmentation) reaches on the same frames, summed over time or with every bin as its own channels: a measure of
what the data allows, not a deployable model.

    .venv/bin/python benchmarks/conv_accuracy.py --seeds 0 1 --config "" --config "train.epochs=30" --ceiling
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.snn import golden_spikes, predict
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets
from pipeline.train import augment, loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)


def one(items: list[str], seed: int) -> dict:
    cfg = registry.resolve(apply_overrides(RunConfig(), [*items, f"train.seed={seed}"]))
    data = sets.load(cfg.data)
    tr, te = data.train, data.test
    t0 = time.perf_counter()
    res = loop.train(cfg, tr.frames, tr.labels, len(tr.classes), monitor=(data.val.frames, data.val.labels))
    seconds = time.perf_counter() - t0
    deployed = float((predict(golden_spikes(res.model.deployed(), te.frames)[-1]) == te.labels).mean())
    return {"config": " ".join(items) or "default", "seed": seed, "deployed": deployed,
            "float": loop.accuracy(res.model, te.frames, te.labels), "train_s": round(seconds, 1),
            "val_curve": [round(a, 4) for a in res.epoch_accuracy]}


def ceiling(mode: str, seed: int, epochs: int = 30) -> dict:
    """A float CNN on the frames: ``sum`` over time (2 channels) or ``bins`` as channels (2 T channels)."""
    cfg = registry.resolve(apply_overrides(RunConfig(), ["data.n_bins=16"]))
    data = sets.load(cfg.data)
    tr, te = data.train, data.test

    def prep(f):
        x = torch.from_numpy(f).float().clamp(max=1)
        return x.sum(1) if mode == "sum" else x.flatten(1, 2)
    x, xt, y, yt = prep(tr.frames), prep(te.frames), torch.from_numpy(tr.labels), torch.from_numpy(te.labels)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(x.shape[1], 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(y), generator=gen)
        for b in range(0, len(y), 64):
            i = perm[b:b + 64]
            loss = F.cross_entropy(net(augment.random_shift(x[i][:, None], 2, gen)[:, 0]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(xt).argmax(1) == yt).float().mean())
    return {"config": f"float CNN ceiling, frames {mode}", "seed": seed, "deployed": None, "float": acc,
            "train_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--config", action="append", default=None,
                    help="space-separated section.key=value items; repeatable ('' = the defaults)")
    ap.add_argument("--ceiling", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/conv_accuracy"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    for items in args.config or [""]:
        for seed in args.seeds:
            rows.append(one(items.split(), seed))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "val_curve"}), flush=True)
    if args.ceiling:
        for mode in ("sum", "bins"):
            rows.append(ceiling(mode, args.seeds[0]))
            print(json.dumps(rows[-1]), flush=True)
    lines = [f"{'configuration':45s} {'seeds':>6s} {'deployed':>16s} {'float':>7s} {'gap (pt)':>8s} {'train s':>8s}"]
    for config in dict.fromkeys(r["config"] for r in rows):
        rs = [r for r in rows if r["config"] == config]
        f = np.array([r["float"] for r in rs])
        d = np.array([r["deployed"] for r in rs]) if rs[0]["deployed"] is not None else None
        dep = f"{d.mean():.4f} +- {d.std():.4f}" if d is not None else "-"
        gap = f"{100 * (f.mean() - d.mean()):8.2f}" if d is not None else f"{'-':>8s}"
        lines.append(f"{config:45s} {len(rs):6d} {dep:>16s} {f.mean():7.4f} {gap} "
                     f"{np.mean([r['train_s'] for r in rs]):8.0f}")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out.with_suffix(".json"), {"setup": {k: str(v) for k, v in vars(args).items()},
                                                         "rows": rows}, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
