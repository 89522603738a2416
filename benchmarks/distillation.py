"""Dataset distillation side by side: PACE against coreset and distillation baselines, at several IPC.

For each IPC: one teacher pool (shared, its training time counted in every optimised method's distillation
time), then per method the distilled set, and per seed a fresh SNN trained only on that set with a fixed budget
of optimiser steps (``--steps`` at ``--batch``, AdamW with a cosine schedule as in training; batches of 10 were
unstable, one seed of two collapsing at IPC 50), tested as the deployed integer model (golden, int64) on the whole
real test split. ``pace-init`` is the real frames PACE starts from, without its optimisation. A second backbone
(``--transfer``, other hidden size and neuron dynamics) trains on the same
sets to show transfer. Full-data training of the default model is measured in the same run for the time ratio.
Prints a table, writes JSON and a plot.

    .venv/bin/python benchmarks/distillation.py                                 # IPC 1, 10, 50 (hours)
    .venv/bin/python benchmarks/distillation.py --ipc 10 --seeds 0 1 --out benchmarks/results/distillation_ipc10
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.snn import golden_spikes, predict  # noqa: E402
from pipeline import train  # noqa: E402
from pipeline.config import RunConfig, apply_overrides  # noqa: E402
from settings import DENSE  # noqa: E402
from pipeline.data import dataset, registry  # noqa: E402
from pipeline.distill import coreset, pace  # noqa: E402

METHODS = ("random", "herding", "kcenter", "dm", "cf", "pace-init", "pace")
ABLATIONS = {"pace-no-sdr": ["distill.sdr_k=0"], "pace-no-temporal": ["distill.temporal=0"],
             "pace-no-peq": ["distill.peq=false"]}


def accuracy(cfg: RunConfig, frames, labels, test, quiet=True) -> tuple[float, float]:
    """(golden test accuracy, training seconds) of a fresh SNN trained on (frames, labels) with ``cfg``."""
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        t0 = time.perf_counter()
        res = train.train(cfg, frames, labels, len(test.classes))
        seconds = time.perf_counter() - t0
    return float((predict(golden_spikes(res.model.deployed(), test.frames)[-1]) == test.labels).mean()), seconds


def make_set(cfg: RunConfig, tr, pool, pool_seconds: float, init_only: bool = False):
    x = cfg.distill
    t0 = time.perf_counter()
    if init_only:       # the real frames PACE starts from: what its optimisation adds is the difference
        idx = pace.init_indices(tr.labels, len(tr.classes), x.ipc, np.random.default_rng([x.seed, 17]))
        return tr.frames[idx], tr.labels[idx], 0.0, []
    if x.method in pace.OPTIMISED:
        r = pace.optimise(cfg, tr.frames, tr.labels, len(tr.classes), pool)
        return r.frames, r.labels, r.seconds + pool_seconds, r.history
    emb = None
    if x.method != "random":
        model = pace.teacher_model(cfg, tr.frames.shape[2:], len(tr.classes))
        pace.load_teacher(model, pool[0], 1.0)
        emb = coreset.embed(model, tr.frames)
    idx = coreset.select(x.method, tr.labels, len(tr.classes), x.ipc, np.random.default_rng([x.seed, 23]), emb)
    extra = pool_seconds if x.method != "random" else 0.0
    return tr.frames[idx], tr.labels[idx], time.perf_counter() - t0 + extra, []


def table(rows: list[dict], full: dict) -> str:
    lines = [f"full data ({full['samples']} samples, {full['epochs']} epochs): accuracy {full['accuracy']:.4f}, "
             f"training {full['train_seconds']:.1f} s",
             f"{'IPC':>4s} {'method':17s} {'accuracy':>16s} {'% of full':>9s} {'transfer':>8s} {'train s':>8s} "
             f"{'speed-up':>8s} {'distill s':>9s} {'storage':>8s}"]
    for r in rows:
        acc = np.array(r["accuracy"])
        lines.append(f"{r['ipc']:4d} {r['method']:17s} {acc.mean():8.4f} +- {acc.std():.4f} "
                     f"{100 * acc.mean() / full['accuracy']:8.1f}% {np.mean(r['transfer_accuracy']):8.4f} "
                     f"{r['train_seconds']:8.2f} {full['train_seconds'] / r['train_seconds']:7.1f}x "
                     f"{r['distill_seconds']:9.1f} {r['storage_ratio']:7.0f}x")
    return "\n".join(lines)


def plot(rows: list[dict], full: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ipcs = sorted({r["ipc"] for r in rows})
    for method in list(METHODS) + list(ABLATIONS):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["ipc"])
        if rs:
            ax.errorbar([r["ipc"] for r in rs], [100 * np.mean(r["accuracy"]) for r in rs],
                        yerr=[100 * np.std(r["accuracy"]) for r in rs], label=method, capsize=3,
                        marker="*" if method == "pace" else "o", ms=10 if method == "pace" else 4,
                        linestyle=":" if method in ABLATIONS else "-")
    ax.axhline(100 * full["accuracy"], color="k", linestyle="--", label="full data")
    ax.axhline(85 * full["accuracy"], color="gray", linestyle=":", label="85% of full")
    ax.set_xscale("log")
    ax.set_xticks(ipcs, [str(i) for i in ipcs])
    ax.set(xlabel="samples per class (IPC)", ylabel="deployed (integer) test accuracy, %",
           title="training only on a distilled set")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def merge(paths: list[Path], out: Path) -> None:
    parts = [json.loads(p.read_text()) for p in paths]
    full = next(p["full"] for p in parts)
    order = {m: k for k, m in enumerate(list(METHODS) + list(ABLATIONS))}
    rows = sorted((r for p in parts for r in p["rows"]), key=lambda r: (r["ipc"], order.get(r["method"], 99)))
    text = table(rows, full)
    print(text)
    out.with_suffix(".json").write_text(json.dumps({"setup": {"merged_from": [str(p) for p in paths],
                                                              **next((p["setup"] for p in parts if "setup" in p),
                                                                     {})},
                                                    "full": full, "rows": rows}, indent=2))
    out.with_suffix(".txt").write_text(text + "\n")
    plot(rows, full, out.with_suffix(".png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--ablations", nargs="*", default=list(ABLATIONS), help="at --ablation-ipc only")
    ap.add_argument("--ablation-ipc", type=int, nargs="+", default=[10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=1000, help="optimiser steps when training on a distilled set")
    ap.add_argument("--batch", type=int, default=50, help="batch size (at most the set's size)")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--transfer", nargs="*", default=["model.hidden=512", "model.du=2048", "model.dv=128"],
                    help="overrides that make the second backbone")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/distillation"))
    ap.add_argument("--merge", type=Path, nargs="+", help="only merge these results JSONs (rows of runs split "
                                                          "over processes) into --out's table, JSON and plot")
    ap.add_argument("--full-from", type=Path, help="reuse the full-data row of this results JSON")
    ap.add_argument("--ablations-only", action="store_true", help="skip --methods: run only the ablations")
    ap.add_argument("--save", type=Path, help="also keep every set as DIR/ipc<N>_<method>.npz (frames, labels)")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    base = [f"data.name={args.dataset}", *DENSE, *args.overrides]
    cfg = registry.resolve(apply_overrides(RunConfig(), base))
    tr, te = dataset.load_split(cfg.data, "train"), dataset.load_split(cfg.data, "test")

    if args.full_from:      # a full-data measurement of another run (e.g. one running in parallel)
        full = json.loads(args.full_from.read_text())["full"] | {"from": str(args.full_from)}
    else:
        print(f"full data: {len(tr.labels)} samples, {cfg.train.epochs} epochs", flush=True)
        acc, secs = accuracy(cfg, tr.frames, tr.labels, te)
        full = {"samples": len(tr.labels), "epochs": cfg.train.epochs, "accuracy": acc, "train_seconds": secs}
        print(f"full data: accuracy {acc:.4f}, {secs:.1f} s", flush=True)
    t0 = time.perf_counter()
    pool = pace.train_teachers(cfg, tr.frames, tr.labels, len(tr.classes))
    pool_seconds = time.perf_counter() - t0

    rows = []
    jobs = [] if args.ablations_only else [(ipc, m, []) for ipc in args.ipc for m in args.methods]
    jobs += [(ipc, name, ABLATIONS[name]) for ipc in args.ablation_ipc for name in args.ablations]
    for ipc, name, extra in jobs:
        method = "pace" if name in ABLATIONS or name == "pace-init" else name
        dcfg = registry.resolve(apply_overrides(RunConfig(), base + [f"distill.method={method}",
                                                                     f"distill.ipc={ipc}", *extra]))
        frames, labels, distill_s, history = make_set(dcfg, tr, pool, pool_seconds, init_only=name == "pace-init")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.save / f"ipc{ipc}_{name}.npz", frames=frames, labels=labels)
        batch = min(args.batch, len(labels))
        epochs = max(1, math.ceil(args.steps / math.ceil(len(labels) / batch)))
        ecfg = replace(dcfg, train=replace(dcfg.train, epochs=epochs, batch_size=batch, lr=args.lr))
        accs, times = zip(*(accuracy(replace(ecfg, train=replace(ecfg.train, seed=s)), frames, labels, te)
                            for s in args.seeds))
        tcfg = registry.resolve(apply_overrides(RunConfig(), base + args.transfer))
        tcfg = replace(tcfg, train=ecfg.train)
        transfer = [accuracy(tcfg, frames, labels, te)[0]]
        rows.append({"ipc": ipc, "method": name, "accuracy": list(accs), "transfer_accuracy": transfer,
                     "train_seconds": float(np.mean(times)), "train_epochs": epochs, "distill_seconds": distill_s,
                     "storage_bytes": int(frames.nbytes), "storage_ratio": tr.frames.nbytes / frames.nbytes,
                     "events_per_sample": float(frames.reshape(len(frames), -1).sum(axis=1).mean()),
                     "loss_first": history[0] if history else None, "loss_last": history[-1] if history else None})
        print(f"IPC {ipc} {name}: accuracy {np.mean(accs):.4f} {list(np.round(accs, 4))}, transfer "
              f"{transfer[0]:.4f}, train {np.mean(times):.2f} s, distill {distill_s:.1f} s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)      # rows so far, in case a long run is stopped
        args.out.with_suffix(".partial.json").write_text(json.dumps({"full": full, "rows": rows}, indent=2))

    text = table(rows, full)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"dataset": args.dataset, "overrides": args.overrides, "steps": args.steps, "batch": args.batch,
             "lr": args.lr, "seeds": args.seeds, "transfer": args.transfer, "teachers_seconds": pool_seconds,
             "distill": cfg.to_dict()["distill"]}
    args.out.with_suffix(".json").write_text(json.dumps({"setup": setup, "full": full, "rows": rows}, indent=2))
    args.out.with_suffix(".txt").write_text(text + "\n")
    plot(rows, full, args.out.with_suffix(".png"))
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
