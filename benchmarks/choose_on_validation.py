"""Choose the defaults on the validation split, then measure the test split once, for the chosen values only.

The validation split is held out of the built-in digits' training split (``data.val_fraction`` = 0.1 per class,
``pipeline/data/sets.py``: 3,600 train / 400 validation); the test split (1,000) is not looked at until the
choice is made. Three choices, each its own ``--part``:

- ``conv``: the default model's channels and decays. Each candidate trains with the run's trainer (BPTT,
  20 epochs) on seed 0; the deployed integer model's validation accuracy picks the winner; then the winner is
  trained on seeds 0 and 1 and tested once (deployed accuracy on the test split).
- ``eval-lr``: the learning rate of the distillation benchmark's evaluation protocol (a fresh SNN trained for
  200 steps at batch 50 on a set), chosen on the whole training part's validation accuracy.
- ``distill``: PACE's own defaults (its step size, the probe statistics, PEQ-1 draws in the loop), each an
  IPC 1 distillation on seed 0, judged by the validation accuracy of the evaluation protocol (at the learning
  rate ``eval-lr`` chose) trained on the set, seeds 0 and 1.
- ``spoken``: distillation on the spoken digits (the recurrent net), judged on the validation speakers: first the
  evaluation protocol (optimiser steps and learning rate of the fresh SNN trained on a set) on a random IPC 10
  set, seeds 0 and 1; then PACE's settings at IPC 10 (its step size, the weight of its temporal term, SDR's k, how
  the set is binarised) and the step size of the optimised baselines DM and CF on the same loop,
  each distilled once (seed 0, keeping its best check) and trained on by that protocol, seeds 0 and 1.

Rows are appended to the results file as they finish, so an interrupted part resumes where it stopped.

    .venv/bin/python benchmarks/choose_on_validation.py --part conv
    .venv/bin/python benchmarks/choose_on_validation.py --part eval-lr
    .venv/bin/python benchmarks/choose_on_validation.py --part distill
    .venv/bin/python benchmarks/choose_on_validation.py --part spoken --threads 1
"""
from __future__ import annotations

import argparse
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
from pipeline.distill import coreset, keep, pace, probes
from pipeline.train import loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

OUT = Path("benchmarks/results/choose_on_validation")    # one file per part: _conv, _eval-lr, _distill
CONV = {  # candidate: overrides (the current default first)
    "16,32 du=dv=2048": [],
    "16,32 du=2048 dv=256": ["model.dv=256"],
    "16,32 du=dv=1024": ["model.du=1024", "model.dv=1024"],
    "16,32 du=4095 dv=2048": ["model.du=4095"],
    "8,16 du=dv=2048": ["model.channels=8,16"],
    "32,64 du=dv=2048": ["model.channels=32,64"],
}
EVAL = ["train.epochs=3", "train.batch_size=50"]        # the protocol on the full training part: 3 x 72 steps
EVAL_LR = (3e-3, 1e-2, 3e-2)
DISTILL = {  # candidate: overrides of PACE at IPC 1
    "lr 0.3, 32 probes x 100 real": [],
    "lr 0.1, 32 probes x 100 real": ["distill.lr=0.1"],
    "lr 0.3, 16 probes x all real": ["distill.probes=16", "distill.batch_real=0"],
    "lr 0.3, PEQ-1 draws in the loop": ["distill.peq=true"],
}


# these choices were made before distill.init existed: PACE and its baselines started from random real recordings
SPOKEN = ["data.name=spoken_digits", "distill.init=random"]
SPOKEN_EVAL = [(200, 3e-3), (200, 1e-2), (600, 3e-3), (600, 1e-2)]    # (steps, lr) of the evaluation protocol
SPOKEN_PACE = {  # candidate: overrides of PACE at IPC 10 on the spoken digits (the current defaults first)
    "lr 0.3, temporal 1, sdr_k 0.5": [],
    "lr 0.1": ["distill.lr=0.1"],
    "temporal 3": ["distill.temporal=3"],
    "sdr_k 0": ["distill.sdr_k=0"],
    "binarize expected": ["distill.binarize=expected"],
    # the optimised baselines on the same loop get the step-size choice too (their only setting of the loop)
    "dm lr 0.3": ["distill.method=dm"], "dm lr 0.1": ["distill.method=dm", "distill.lr=0.1"],
    "cf lr 0.3": ["distill.method=cf"], "cf lr 0.1": ["distill.method=cf", "distill.lr=0.1"],
}


def deployed_accuracy(model, split) -> float:
    return float((predict(golden_spikes(model.deployed(), split.frames)[-1]) == split.labels).mean())


def trained(items: list[str], frames, labels, n_classes: int):
    cfg = registry.resolve(apply_overrides(RunConfig(), items))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        res = loop.train(cfg, frames, labels, n_classes)
    return res.model, time.perf_counter() - t0


def conv(rows: list[dict], save) -> None:
    data = sets.load(registry.resolve(RunConfig()).data)
    for name, items in CONV.items():
        if not any(r["part"] == "conv" and r["candidate"] == name and r["seed"] == 0 for r in rows):
            model, s = trained(items + ["train.seed=0"], data.train.frames, data.train.labels, 10)
            save({"part": "conv", "candidate": name, "overrides": items, "seed": 0,
                  "val_accuracy": deployed_accuracy(model, data.val), "train_s": round(s, 1)})
    chosen = max(CONV, key=lambda n: next(r["val_accuracy"] for r in rows if r["part"] == "conv"
                                          and r["candidate"] == n and r["seed"] == 0))
    for seed in (0, 1):
        if not any(r["part"] == "conv-test" and r["seed"] == seed for r in rows):
            model, s = trained(CONV[chosen] + [f"train.seed={seed}"], data.train.frames, data.train.labels, 10)
            save({"part": "conv-test", "candidate": chosen, "overrides": CONV[chosen], "seed": seed,
                  "val_accuracy": deployed_accuracy(model, data.val),
                  "test_accuracy": deployed_accuracy(model, data.test), "train_s": round(s, 1)})


def eval_lr(rows: list[dict], save) -> None:
    data = sets.load(registry.resolve(RunConfig()).data)
    for seed in (0, 1):
        for lr in EVAL_LR:
            if not any(r["part"] == "eval-lr" and r["lr"] == lr and r["seed"] == seed for r in rows):
                model, s = trained(EVAL + [f"train.lr={lr}", f"train.seed={seed}"], data.train.frames,
                                   data.train.labels, 10)
                save({"part": "eval-lr", "lr": lr, "seed": seed, "steps": 3 * -(-len(data.train.labels) // 50),
                      "val_accuracy": deployed_accuracy(model, data.val), "train_s": round(s, 1)})


def chosen_eval_lr() -> float:
    """The evaluation protocol's learning rate, as --part eval-lr chose it (mean validation accuracy)."""
    rows = json.loads(OUT.with_name(f"{OUT.name}_eval-lr.json").read_text())["rows"]
    return max({r["lr"] for r in rows}, key=lambda lr: np.mean([r["val_accuracy"] for r in rows if r["lr"] == lr]))


def distill(rows: list[dict], save) -> None:
    data = sets.load(registry.resolve(RunConfig()).data)
    lr = chosen_eval_lr()
    for name, items in DISTILL.items():
        if any(r["part"] == "distill" and r["candidate"] == name for r in rows):
            continue
        cfg = registry.resolve(apply_overrides(RunConfig(), ["distill.ipc=1", "train.seed=0", "distill.init=random"]
                                               + items))
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            pool = probes.train_teachers(cfg, data.train.frames, data.train.labels, 10) \
                if pace.needs_teachers(cfg) else None
            r = pace.optimise(cfg, data.train.frames, data.train.labels, 10, pool)
        seconds = time.perf_counter() - t0
        accs = []
        for seed in (0, 1):      # the evaluation protocol of benchmarks/distillation.py: 200 steps at batch 10
            model, _ = trained(["train.epochs=200", "train.batch_size=10", f"train.lr={lr}", f"train.seed={seed}"],
                               r.frames, r.labels, 10)
            accs.append(deployed_accuracy(model, data.val))
        save({"part": "distill", "candidate": name, "overrides": items, "ipc": 1, "distill_seed": 0, "eval_lr": lr,
              "val_accuracy": accs, "distill_s": round(seconds, 1)})


def chosen_spoken_eval(rows: list[dict]) -> tuple[int, float]:
    """The spoken evaluation protocol (steps, lr) with the best mean validation accuracy."""
    ev = [r for r in rows if r["part"] == "spoken-eval"]
    return max(SPOKEN_EVAL, key=lambda c: np.mean([r["val_accuracy"] for r in ev if (r["steps"], r["lr"]) == c]))


def spoken(rows: list[dict], save) -> None:
    cfg = registry.resolve(apply_overrides(RunConfig(), SPOKEN))
    data = sets.load(cfg.data)
    n = len(data.train.classes)
    idx = coreset.select("random", data.train.labels, n, 10, np.random.default_rng([0, 23]))
    for steps, lr in SPOKEN_EVAL:
        for seed in (0, 1):
            if not any(r["part"] == "spoken-eval" and (r["steps"], r["lr"], r["seed"]) == (steps, lr, seed)
                       for r in rows):
                model = spoken_trained(cfg, data.train.frames[idx], data.train.labels[idx], n, steps, lr, seed)
                save({"part": "spoken-eval", "steps": steps, "lr": lr, "seed": seed, "set": "random IPC 10",
                      "val_accuracy": deployed_accuracy(model, data.val)})
    steps, lr = chosen_spoken_eval(rows)
    for name, items in SPOKEN_PACE.items():
        if any(r["part"] == "spoken-pace" and r["candidate"] == name for r in rows):
            continue
        dcfg = registry.resolve(apply_overrides(RunConfig(), SPOKEN + items + [
            "distill.ipc=10", f"distill.check_steps={steps}", f"distill.check_lr={lr}"]))
        t0 = time.perf_counter()
        r = pace.optimise(dcfg, data.train.frames, data.train.labels, n,
                          judge=keep.judge(dcfg, data.val.frames, data.val.labels, n))
        seconds = time.perf_counter() - t0
        accs = [deployed_accuracy(spoken_trained(dcfg, r.frames, r.labels, n, steps, lr, seed), data.val)
                for seed in (0, 1)]
        save({"part": "spoken-pace", "candidate": name, "overrides": items, "ipc": 10, "distill_seed": 0,
              "eval_steps": steps, "eval_lr": lr, "val_accuracy": accs, "checks": r.checks,
              "kept_step": r.kept_step, "distill_s": round(seconds, 1)})


def spoken_method(candidate: str) -> str:
    return candidate.split()[0] if candidate.split()[0] in ("dm", "cf") else "pace"


def spoken_trained(cfg, frames, labels, n_classes: int, steps: int, lr: float, seed: int):
    with contextlib.redirect_stdout(io.StringIO()):
        return loop.train(keep.protocol(cfg, len(labels), steps, lr, seed), frames, labels, n_classes).model


def table(rows: list[dict]) -> str:
    lines = []
    conv_rows = [r for r in rows if r["part"] == "conv"]
    if conv_rows:
        lines.append("conv defaults: deployed validation accuracy (the validation split held out of the training "
                     "digits), seed 0")
        lines += [f"  {r['candidate']:28s} {r['val_accuracy']:.4f}  ({r['train_s']:.0f} s)" for r in conv_rows]
    test = [r for r in rows if r["part"] == "conv-test"]
    if test:
        acc = np.array([r["test_accuracy"] for r in test])
        lines.append(f"  chosen: {test[0]['candidate']}; test accuracy, once (seeds "
                     f"{', '.join(str(r['seed']) for r in test)}): {acc.mean():.4f} +- {acc.std():.4f}")
    lrs = [r for r in rows if r["part"] == "eval-lr"]
    if lrs:
        lines.append("distillation evaluation protocol: learning rate, full training part, 216 steps at batch 50")
        for lr in dict.fromkeys(r["lr"] for r in lrs):
            acc = [r["val_accuracy"] for r in lrs if r["lr"] == lr]
            lines.append(f"  lr {lr:g}: validation {np.mean(acc):.4f} +- {np.std(acc):.4f} (seeds "
                         f"{', '.join(str(r['seed']) for r in lrs if r['lr'] == lr)})")
    dist = [r for r in rows if r["part"] == "distill"]
    if dist:
        lines.append("PACE defaults at IPC 1 (seed 0 distillation, evaluation seeds 0 and 1, validation accuracy)")
        lines += [f"  {r['candidate']:34s} {np.mean(r['val_accuracy']):.4f} +- {np.std(r['val_accuracy']):.4f}"
                  f"  ({r['distill_s']:.0f} s)" for r in dist]
    ev = [r for r in rows if r["part"] == "spoken-eval"]
    if ev:
        lines.append("spoken digits, distillation evaluation protocol on a random IPC 10 set (deployed accuracy on "
                     "the validation speakers, seeds 0 and 1)")
        for steps, lr in SPOKEN_EVAL:
            acc = [r["val_accuracy"] for r in ev if (r["steps"], r["lr"]) == (steps, lr)]
            if acc:
                lines.append(f"  {steps} steps, lr {lr:g}: {np.mean(acc):.4f} +- {np.std(acc):.4f}")
        if len(ev) == 2 * len(SPOKEN_EVAL):
            lines.append("  chosen: {} steps, lr {:g}".format(*chosen_spoken_eval(rows)))
    sp = [r for r in rows if r["part"] == "spoken-pace"]
    if sp:
        lines.append("spoken digits, PACE settings at IPC 10 (seed 0 distillation keeping its best check; evaluation "
                     "seeds 0 and 1; deployed validation accuracy)")
        lines += [f"  {r['candidate']:34s} {np.mean(r['val_accuracy']):.4f} +- {np.std(r['val_accuracy']):.4f}"
                  f"  (kept step {r['kept_step']}, {r['distill_s']:.0f} s)" for r in sp]
        for method in ("pace", "dm", "cf"):
            mine = [r for r in sp if spoken_method(r["candidate"]) == method]
            if len(mine) == sum(spoken_method(c) == method for c in SPOKEN_PACE):
                lines.append(f"  chosen for {method}: "
                             + max(mine, key=lambda r: np.mean(r["val_accuracy"]))["candidate"])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["conv", "eval-lr", "distill", "spoken"], required=True)
    ap.add_argument("--render", action="store_true", help="only rewrite the part's table from its results")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = args.out.with_name(f"{args.out.name}_{args.part}.json")
    rows = json.loads(path.read_text())["rows"] if path.exists() else []

    def save(row: dict) -> None:
        rows.append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        harness.write_json(path, {"protocol": __doc__.split("\n\n")[1], "rows": rows}, indent=2)
        harness.write_text(path.with_suffix(".txt"), table(rows) + "\n")
        print(json.dumps(row), flush=True)
    if args.render:
        harness.write_text(path.with_suffix(".txt"), table(rows) + "\n")
        return
    {"conv": conv, "eval-lr": eval_lr, "distill": distill, "spoken": spoken}[args.part](rows, save)
    print(table(rows))


if __name__ == "__main__":
    main()
