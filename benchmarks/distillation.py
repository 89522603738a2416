"""Dataset distillation side by side: PACE against coreset and distillation baselines, at several IPC.

Protocol (one for every method; README "Dataset distillation"): the default (conv) model, or ``--model dense``.
For each IPC and method a set is made (``pace-init``: the real frames PACE starts from, without its
optimisation; ``pace-continuous``: PACE's event probabilities before binarisation, trained on as they are;
``full``: the whole real training split), then per seed a fresh SNN is trained only on that set for ``--steps``
optimiser steps at batch ``min(--batch, set size)`` with the run's training settings otherwise (AdamW, weight
decay, cosine schedule, random-shift augmentation), at ``--lr``; and tested as the deployed integer model
(golden, int64) on the whole real test split. The full-data accuracy and training time of the default
training schedule come from ``--full-from`` (benchmarks/results/conv_accuracy.json, same model, 2 seeds).
Prints a table, writes JSON and a plot.

    .venv/bin/python benchmarks/distillation.py                                 # IPC 1, 10, 50 (hours)
    .venv/bin/python benchmarks/distillation.py --ipc 1 10 --out benchmarks/results/distillation_parts/a
    .venv/bin/python benchmarks/distillation.py --merge PARTS.json ... --out benchmarks/results/distillation
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from settings import DENSE  # noqa: E402

from models.snn import golden_spikes, predict  # noqa: E402
from pipeline.config import RunConfig, apply_overrides  # noqa: E402
from pipeline.data import dataset, registry, sets  # noqa: E402
from pipeline.distill import coreset, keep, pace, probes  # noqa: E402
from pipeline.train import loop  # noqa: E402
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

METHODS = ("full", "random", "herding", "kcenter", "dm", "cf", "pace-init", "pace", "pace-continuous")
ABLATIONS = {"pace-no-sdr": ["distill.sdr_k=0"], "pace-no-temporal": ["distill.temporal=0"],
             "pace-peq": ["distill.peq=true"],           # PEQ-1 draws in the loop (the paper's PEQ-N, N = 1)
             "pace-sample": [],                          # stored as one PEQ-1 draw of p instead of p > 1/2
             "pace-trained-pool": ["distill.pool=trained"],
             # the fixes the paper suggests where PACE falls short: more probes, real statistics from more samples
             "pace-probes-64": ["distill.probes=64"], "pace-real-400": ["distill.batch_real=400"],
             # the probes see the rounded set p > 1/2 (straight-through) in the last 50 or 100 of the 300 steps
             "pace-round-50": ["distill.round_steps=50"], "pace-round-100": ["distill.round_steps=100"],
             # stored as each sample's expected event count at its most probable places, not p > 1/2
             "pace-expected": ["distill.binarize=expected"],
             # with SDR at the paper's k = 0.5, where the setting chosen on validation has none (the spoken digits)
             "pace-sdr": ["distill.sdr_k=0.5"]}


def accuracy(cfg: RunConfig, frames, labels, test, quiet=True) -> tuple[float, float]:
    """(golden test accuracy, training seconds) of a fresh SNN trained on (frames, labels) with ``cfg``."""
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        t0 = time.perf_counter()
        res = loop.train(cfg, frames, labels, len(test.classes))
        seconds = time.perf_counter() - t0
    return float((predict(golden_spikes(res.model.deployed(), test.frames)[-1]) == test.labels).mean()), seconds


def make_set(cfg: RunConfig, tr, val, pool, pool_seconds: float, name: str, cache: dict):
    """(frames, labels, distillation seconds, loss history, extra) of the set ``name`` at ``cfg.distill.ipc``.
    ``cache`` keeps each PACE result, so that its continuous row reuses the optimisation of its binary row.
    Optimised sets are judged on ``val`` (the validation split) as ``distill.keep`` says."""
    x = cfg.distill
    t0 = time.perf_counter()
    if name == "full":
        return tr.frames, tr.labels, 0.0, [], {}
    if name == "pace-init":       # the real frames PACE starts from: what its optimisation adds is the difference
        start = pace.start_indices(cfg, tr.frames, tr.labels, len(tr.classes), pool,
                                   np.random.default_rng([x.seed, 17]))
        return tr.frames[start], tr.labels[start], 0.0, [], {"init": x.init}
    if x.method in pace.OPTIMISED:
        key = pace.config_key(cfg)
        if key not in cache:
            cache[key] = pace.optimise(cfg, tr.frames, tr.labels, len(tr.classes), pool,
                                       judge=keep.judge(cfg, val.frames, val.labels, len(tr.classes)))
        r = cache[key]
        extra = {"loss_history": [round(v, 5) for v in r.history],
                 "grad_norms": [float(f"{g:.4g}") for g in r.grad_norms],
                 "grad_norm_first": r.grad_norms[0], "grad_norm_last": r.grad_norms[-1],
                 "mean_probability": float(r.probabilities.mean()), "checks": r.checks, "kept_step": r.kept_step,
                 "init": x.init, "changed_from_start": float((r.frames != np.minimum(tr.frames[r.start], 1)).mean())}
        seconds = r.seconds + (pool_seconds if pace.needs_teachers(cfg) else 0.0)
        frames = r.probabilities if name.endswith("-continuous") else r.frames
        if name == "pace-sample":
            noise = np.random.default_rng([x.seed, 41]).random(r.probabilities.shape, dtype=np.float32)
            frames = (noise < r.probabilities).astype(np.uint8)
        return frames, r.labels, seconds, r.history, extra
    emb = probes.teacher_features(cfg, tr.frames, len(tr.classes), pool[0]) if x.method != "random" else None
    idx = coreset.select(x.method, tr.labels, len(tr.classes), x.ipc, np.random.default_rng([x.seed, 23]), emb)
    extra = pool_seconds / len(pool) if x.method != "random" else 0.0      # one teacher's training
    return tr.frames[idx], tr.labels[idx], time.perf_counter() - t0 + extra, [], {}


BASELINES = ("random", "herding", "kcenter", "dm", "cf")
# rows whose set depends on where an optimisation starts (distill.init): the optimised methods and PACE's start
OPTIMISED_ROWS = ("dm", "cf", "pace-init", "pace", "pace-continuous", *ABLATIONS)
FRACTION_TARGETS = {1: 0.70, 10: 0.85}     # IPC: fraction of full data's accuracy PACE should reach; issue 30
SPEEDUP_TARGET = (10, 20.0)                 # training on the IPC 10 set at least 20x faster than full data's


def verdicts(rows: list[dict], full: dict) -> list[str]:
    """PACE against its targets and against each baseline at the same IPC, seed by seed (the rule for beyond the
    spread of seeds and test sampling: paired in benchmarks/harness.py)."""
    lines = []
    for ipc in sorted({r["ipc"] for r in rows if r["method"] == "pace"}):
        pace_row = next(r for r in rows if r["method"] == "pace" and r["ipc"] == ipc)
        acc = float(np.mean(pace_row["accuracy"]))
        if ipc in FRACTION_TARGETS:
            share = round(acc / full["accuracy"], 3)
            lines.append(f"pace IPC {ipc}: {acc:.4f} = {100 * share:.1f}% of full data's {full['accuracy']:.4f} "
                         f"(target >= {100 * FRACTION_TARGETS[ipc]:.0f}%): "
                         + ("met" if share >= FRACTION_TARGETS[ipc] else
                            f"missed by {100 * (FRACTION_TARGETS[ipc] - share):.1f} points of share "
                            f"(needs {FRACTION_TARGETS[ipc] * full['accuracy']:.4f})"))
        if ipc == SPEEDUP_TARGET[0]:
            train = round(full["train_seconds"] / pace_row["train_seconds"], 1)
            whole = round(full["train_seconds"] / (pace_row["train_seconds"] + pace_row["distill_seconds"]), 1)
            lines.append(f"pace IPC {ipc}: training {train:.1f}x faster than full data's {full['train_seconds']:.0f} s "
                         f"(target >= {SPEEDUP_TARGET[1]:g}x): " + ("met" if train >= SPEEDUP_TARGET[1] else "missed")
                         + f"; with its distillation ({pace_row['distill_seconds']:.0f} s) {whole:.1f}x"
                         + (f" (full data's time is {full['from']}'s, timed in another run)" if "from" in full else ""))
        for other in BASELINES:
            base = next((r for r in rows if r["method"] == other and r["ipc"] == ipc), None)
            if base is None:
                continue
            mean, diffs, spread, beyond = harness.paired(pace_row["accuracy"], base["accuracy"],
                                                         full.get("test_samples"))
            lines.append(f"pace - {other} at IPC {ipc}: {mean:+.2f} pt (" + ", ".join(
                f"{d:+.2f}" for d in diffs) + f" by seed); spread {spread:.2f} pt: "
                + ("beyond it" if beyond else "within it"))
    return lines


def table(rows: list[dict], full: dict) -> str:
    lines = [f"full data ({full['samples']} samples, {full['epochs']} epochs): accuracy {full['accuracy']:.4f}, "
             f"training {full['train_seconds']:.1f} s",
             f"{'IPC':>4s} {'method':30s} {'accuracy':>16s} {'% of full':>9s} {'transfer':>8s} {'train s':>8s} "
             f"{'speed-up':>8s} {'distill s':>9s} {'storage':>8s} {'events':>7s} {'kept':>8s}"]
    for r in rows:
        acc = np.array(r["accuracy"])
        lines.append(f"{r['ipc']:4d} {r['method']:30s} {acc.mean():8.4f} +- {acc.std():.4f} "
                     f"{100 * acc.mean() / full['accuracy']:8.1f}% "
                     + (f"{np.mean(r['transfer_accuracy']):8.4f} " if r["transfer_accuracy"] else f"{'-':>8s} ")
                     + f"{r['train_seconds']:8.2f} {full['train_seconds'] / r['train_seconds']:7.1f}x "
                     f"{r['distill_seconds']:9.1f} {r['storage_ratio']:7.0f}x "
                     f"{r.get('events_per_sample', float('nan')):7.0f} {kept(r):>8s}")
    return "\n".join(lines + ["events: mean sum of a recording's frame values (a real recording's event counts, "
                               "several may share a bin; a binary set's occupied bins); kept: the step whose set an "
                               "optimised method stored (start: its real start; last: the last step, unjudged; "
                               "judged: the best check, its step in the part's log)"]
                      + verdicts(rows, full))


def kept(row: dict) -> str:
    """Which step of its optimisation an optimised set is (distill.keep); '-' for real recordings."""
    if "kept_step" in row and row["kept_step"] is not None:
        return "start" if row["kept_step"] == 0 else f"step {row['kept_step']}"
    if row.get("kept_step_recorded") is False:      # judged (distill.keep=best), but the row did not keep the step
        return "judged"
    method = row["method"].split("/")[0]
    optimised = method in OPTIMISED_ROWS and method != "pace-init"
    return "last" if optimised else "-"


def plot(rows: list[dict], full: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ipcs = sorted({r["ipc"] for r in rows})
    for method in list(METHODS) + list(ABLATIONS):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["ipc"])
        if method == "full" and rs:       # the whole training split under the same step budget
            ax.axhline(100 * np.mean(rs[0]["accuracy"]), color="gray", linestyle="--",
                       label=f"full data, same {rs[0]['train_steps']} steps")
        elif rs:
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


def judged(row: dict, setup: dict) -> dict:
    """``row``, marked when its part judged its sets (distill.keep=best) but, run before the rows kept it, did not
    record the step kept (the part's log has it)."""
    if setup.get("distill", {}).get("keep") == "best" and "kept_step" not in row and kept(row) == "last":
        return dict(row, kept_step_recorded=False)
    return row


def per_seed(rows: list[dict], seeds: list[int]) -> list[dict]:
    """One entry per (IPC, method, training seed): the accuracy each evaluation seed gave."""
    return [{"ipc": r["ipc"], "method": r["method"], "seed": s, "accuracy": a}
            for r in rows for s, a in zip(r.get("seeds", seeds), r["accuracy"], strict=True)]


def started(row: dict, start: str | None) -> dict:
    """``row``, renamed ``METHOD/INIT-start`` when it is an optimised set (or PACE's start) that began from other
    real recordings (``distill.init``; rows recorded before the option: random) than ``start`` says the merged
    table's own names mean."""
    init = row.get("init", "random")
    if start is None or init == start or row["method"].split("/")[0] not in OPTIMISED_ROWS:
        return row
    return dict(row, method=f"{row['method']}/{init}-start")


def merge(paths: list[Path], out: Path, start: str | None = None, judged_parts: tuple[Path, ...] = ()) -> None:
    """Join the rows of ``paths`` into one table (see --merge, --start); ``judged_parts`` judged their sets
    (distill.keep=best) but were saved before a part recorded its setup."""
    parts = [json.loads(p.read_text()) for p in paths]
    full = dict(next(p["full"] for p in parts))
    dataset = next((p["setup"].get("dataset") for p in parts if "setup" in p), None)
    full.setdefault("test_samples", harness.TEST_SAMPLES.get(dataset))     # parts recorded before it was kept
    order = {m: k for k, m in enumerate(list(METHODS) + list(ABLATIONS))}
    latest = {}
    for path, p in zip(paths, parts):    # a later part's row replaces an earlier one of the same IPC and name
        setup = p.get("setup") or ({"distill": {"keep": "best"}} if path in judged_parts else {})
        for r in p["rows"]:
            r = started(judged(r, setup), start)
            latest[(r["ipc"], r["method"])] = r
    rows = sorted(latest.values(), key=lambda r: (r["ipc"], order.get(r["method"].split("/")[0], 99),
                                                  "/" in r["method"]))
    text = table(rows, full)
    print(text)
    setup = {"merged_from": [str(p) for p in paths], **next((p["setup"] for p in parts if "setup" in p), {}),
             **({"start": start} if start else {})}
    harness.write_json(out.with_suffix(".json"), {"setup": setup, "full": full, "rows": rows,
                                                  "per_seed": per_seed(rows, setup.get("seeds", [0, 1]))}, indent=2)
    harness.write_text(out.with_suffix(".txt"), text + "\n")
    plot(rows, full, out.with_suffix(".png"))


def full_data(given: dict, samples: int, epochs: int) -> dict:
    """Full-data accuracy and training time of the default schedule, from the results file ``--full-from`` names."""
    if "full" in given:
        return given["full"]
    if "runs" in given and "bptt" in given:                          # temporal.json: the recurrent net's BPTT runs
        rows = [r for r in given["runs"] if r["trainer"] == "bptt"]
        epochs = int(re.search(r"train\.epochs=(\d+)", given["protocol"]).group(1))    # the run it timed
        return {"samples": samples, "epochs": epochs, "seeds": [r["seed"] for r in rows],
                "accuracy": float(np.mean([r["deployed_accuracy"] for r in rows])),
                "accuracy_per_seed": [r["deployed_accuracy"] for r in rows],
                "train_seconds": float(np.mean([r["train_s"] for r in rows]))}
    if any(r.get("method") == "full" and "examples_processed" in r for r in given["rows"]):   # pruning*.json
        rows = [r for r in given["rows"] if r["method"] == "full"]
        return {"samples": samples, "epochs": rows[0]["epochs"], "seeds": [r["seed"] for r in rows],
                "accuracy": float(np.mean([r["accuracy"] for r in rows])),
                "accuracy_per_seed": [r["accuracy"] for r in rows],
                "train_seconds": float(np.mean([r["train_seconds"] for r in rows]))}
    if any(r.get("part") == "conv-test" for r in given["rows"]):    # choose_on_validation_conv.json
        rows = [r for r in given["rows"] if r.get("part") == "conv-test"]
        return {"samples": samples, "epochs": epochs, "seeds": [r["seed"] for r in rows],
                "accuracy": float(np.mean([r["test_accuracy"] for r in rows])),
                "accuracy_per_seed": [r["test_accuracy"] for r in rows],
                "train_seconds": float(np.mean([r["train_s"] for r in rows]))}
    rows = [r for r in given["rows"] if r["config"] == "default"]  # conv_accuracy.json: default rows, one per seed
    return {"samples": samples, "epochs": epochs, "seeds": [r["seed"] for r in rows],
            "accuracy": float(np.mean([r["deployed"] for r in rows])),
            "accuracy_per_seed": [r["deployed"] for r in rows],
            "train_seconds": float(np.mean([r["train_s"] for r in rows]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--ablations", nargs="*", default=list(ABLATIONS), help="at --ablation-ipc only")
    ap.add_argument("--ablation-ipc", type=int, nargs="+", default=[10])
    harness.common_args(ap, "benchmarks/results/distillation", threads=0, merge=False)
    ap.add_argument("--steps", type=int, default=200, help="optimiser steps when training on a set")
    ap.add_argument("--lr", type=float, default=3e-3, help="the evaluation protocol's learning rate (default: chosen "
                    "on the validation split, benchmarks/results/choose_on_validation_eval-lr.txt)")
    ap.add_argument("--model", choices=("conv", "dense"), default="conv", help="conv: the default model")
    ap.add_argument("--transfer", nargs="*", default=[],
                    help="overrides that make a second backbone trained on the same sets (none: not run)")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--merge", type=Path, nargs="+", help="only merge these results JSONs (rows of runs split "
                                                          "over processes) into --out's table, JSON and plot; a "
                                                          "row of a later file replaces one of the same IPC and "
                                                          "method in an earlier file")
    ap.add_argument("--start", choices=("random", "herding"), help="with --merge: the start (distill.init) of the "
                    "optimised sets the table lists under their own names; rows of another start (rows recorded "
                    "before distill.init: random) are listed as METHOD/INIT-start (default: every row as it is)")
    ap.add_argument("--judged", type=Path, nargs="*", default=[], help="with --merge: parts (of those merged) that "
                    "judged their sets (distill.keep=best) but, saved before a part recorded its setup, do not say so")
    ap.add_argument("--full-from", type=Path, default=Path("benchmarks/results/choose_on_validation_conv.json"),
                    help="full-data accuracy and training time: conv_accuracy.json's default rows, or the "
                         "'full' entry of a distillation JSON")
    ap.add_argument("--ablations-only", action="store_true", help="skip --methods: run only the ablations")
    ap.add_argument("--save", type=Path, help="also keep every set as DIR/ipc<N>_<method>.npz (frames, labels)")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out, args.start, tuple(args.judged))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    base = [f"data.name={args.dataset}", *(DENSE if args.model == "dense" else []), *args.overrides]
    cfg = registry.resolve(apply_overrides(RunConfig(), base))
    tr, val = sets.real_train(cfg.data)         # the validation split stays out of every set; it judges PACE's
    te = dataset.load_split(cfg.data, "test")

    full = full_data(json.loads(args.full_from.read_text()), len(tr.labels), cfg.train.epochs)
    full["from"], full["test_samples"] = str(args.full_from), len(te.labels)
    # herding and k-center embed with one trained teacher; trained probes need distill.teachers of them
    trained_probes = cfg.distill.pool != "random" or "pace-trained-pool" in args.ablations
    n_teachers = cfg.distill.teachers if trained_probes else int(any(m in ("herding", "kcenter")
                                                                         for m in args.methods)
                                                                     or cfg.distill.init == "herding")
    def train_pool():
        t0 = time.perf_counter()
        tcfg = replace(cfg, distill=replace(cfg.distill, teachers=n_teachers))
        return probes.train_teachers(tcfg, tr.frames, tr.labels, len(tr.classes)), time.perf_counter() - t0

    pool, pool_seconds = None, 0.0          # trained when a row still to run needs it

    # rows of an interrupted run of the same protocol, or of a finished one that more rows now join
    partial, final = harness.partial_path(args.out), args.out.with_suffix(".json")
    rows = next((json.loads(p.read_text())["rows"] for p in (partial, final) if p.exists()), [])
    cache, done = {}, {(r["ipc"], r["method"]) for r in rows}
    jobs = [] if args.ablations_only else [(ipc, m, []) for ipc in args.ipc for m in args.methods]
    jobs += [(ipc, name, ABLATIONS[name]) for ipc in args.ablation_ipc for name in args.ablations]
    jobs = [j for j in jobs if j[:2] not in done]
    if pool is None and any(name in ("herding", "kcenter") or pace.needs_teachers(
            registry.resolve(apply_overrides(RunConfig(), base + ABLATIONS.get(name, [])))) for _, name, _ in jobs):
        pool, pool_seconds = train_pool()
    for ipc, name, extra in jobs:
        same = next((r for r in rows if r["method"] == "full"), None) if name == "full" else None
        if same is not None:    # the whole training split does not depend on the IPC: trained once, listed per IPC
            rows.append(dict(same, ipc=ipc))
            continue
        method = "pace" if name.startswith("pace") else ("random" if name == "full" else name)
        dcfg = registry.resolve(apply_overrides(RunConfig(), base + [f"distill.method={method}",
                                                                     f"distill.ipc={ipc}", *extra]))
        frames, labels, distill_s, history, info = make_set(dcfg, tr, val, pool, pool_seconds, name, cache)
        if args.save and name != "full":
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.save / f"ipc{ipc}_{name}.npz", frames=frames, labels=labels)
        accs, times = zip(*(accuracy(keep.protocol(dcfg, len(labels), args.steps, args.lr, s), frames, labels, te)
                            for s in args.seeds))
        ecfg = keep.protocol(dcfg, len(labels), args.steps, args.lr, args.seeds[0])
        epochs, batch = ecfg.train.epochs, ecfg.train.batch_size
        transfer = []
        if args.transfer:
            tcfg = registry.resolve(apply_overrides(RunConfig(), base + args.transfer))
            transfer = [accuracy(replace(tcfg, train=ecfg.train), frames, labels, te)[0]]
        rows.append({"ipc": ipc, "method": name, "accuracy": list(accs), "seeds": list(args.seeds),
                     "transfer_accuracy": transfer,
                     "train_seconds": float(np.mean(times)), "train_epochs": epochs, "train_steps": epochs * math.ceil(
                         len(labels) / batch), "distill_seconds": distill_s, "samples": len(labels),
                     "storage_bytes": int(np.asarray(frames).size), "storage_ratio": tr.frames.size / frames.size,
                     "events_per_sample": float(frames.reshape(len(frames), -1).sum(axis=1).mean()),
                     "loss_first": history[0] if history else None, "loss_last": history[-1] if history else None,
                     **info})
        print(f"IPC {ipc} {name}: accuracy {np.mean(accs):.4f} {list(np.round(accs, 4))}"
              + (f", transfer {transfer[0]:.4f}" if transfer else "")
              + f", train {np.mean(times):.2f} s, distill {distill_s:.1f} s", flush=True)
        harness.save_partial(args.out, {"full": full, "rows": rows})     # rows so far, in case it is stopped

    text = table(rows, full)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"dataset": args.dataset, "model": args.model, "overrides": args.overrides, "steps": args.steps,
             "batch": keep.BATCH, "lr": args.lr, "seeds": args.seeds, "transfer": args.transfer,
             "teachers_seconds": pool_seconds, "threads": torch.get_num_threads(),
             "distill": cfg.to_dict()["distill"], "train": cfg.to_dict()["train"]}
    harness.write_json(args.out.with_suffix(".json"), {"setup": setup, "full": full, "rows": rows,
                                                       "per_seed": per_seed(rows, args.seeds)}, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")
    plot(rows, full, args.out.with_suffix(".png"))
    partial.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
