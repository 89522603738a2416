"""Is it SLTT's objective or its gradient approximation that costs accuracy? BPTT trained on SLTT's per-step
objective, side by side with BPTT on the count objective and with SLTT.

Protocol: the default run configuration on the built-in digits (conv model, T = 8, 20 epochs, its training,
validation and test splits), seeds 0 and 1; three trainers on the same data and settings:

- ``bptt``: the BPTT trainer (cross-entropy of the final spike counts);
- ``bptt-steps``: exact backpropagation through time of SLTT's objective, sum_t CE(c_t) / n with
  c_t = c_{t-1} (detached) + s_t, as pipeline/train/sltt.py writes it;
- ``sltt``: pipeline/train/sltt.py (the same objective, the temporal routes dropped).

Reported per run: the float validation accuracy after the last epoch and the deployed integer model's test
accuracy (golden model); nothing here chooses a setting. benchmarks/sltt_gradients.py measures the gradients.

    .venv/bin/python benchmarks/sltt_objective.py
"""
from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
from torch.nn import functional as F

from models.snn import golden_spikes, predict
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets
from pipeline.train import loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

TRAINERS = ("bptt", "bptt-steps", "sltt")


@contextlib.contextmanager
def per_step_objective():
    """loop.step's BPTT branch on SLTT's per-step objective (this measurement only)."""
    original = loop.step

    def step(model, net, opt, x, y, w, how):
        if how.method != "bptt":
            return original(model, net, opt, x, y, w, how)
        opt.zero_grad()
        out = net(x)
        s = out.spikes[-1]
        c = torch.cumsum(s, 1)
        B, n, C = s.shape
        ce_t = F.cross_entropy(((c - s).detach() + s).reshape(B * n, C), y.repeat_interleave(n), reduction="none")
        ((w.repeat_interleave(n) * ce_t).sum() / n).backward()
        opt.step()
        ce = F.cross_entropy(s.sum(1), y, reduction="none")
        return s.sum(1).detach(), out.drive[-1].detach(), out.spikes[-2].sum(dim=2).detach(), ce.detach()
    loop.step = step
    try:
        yield
    finally:
        loop.step = original


def run_one(cfg: RunConfig, trainer: str, seed: int, data) -> dict:
    method = "sltt" if trainer == "sltt" else "bptt"
    c = apply_overrides(cfg, [f"train.method={method}", f"train.seed={seed}", "train.traces=false"])   # SLTT as published
    t0 = time.perf_counter()
    with per_step_objective() if trainer == "bptt-steps" else contextlib.nullcontext():
        result = loop.train(c, data.train.frames, data.train.labels, len(data.train.classes),
                            monitor=(data.val.frames, data.val.labels))
    seconds = time.perf_counter() - t0
    out = golden_spikes(result.model.deployed(), data.test.frames)[-1]
    return {"trainer": trainer, "seed": seed, "val_accuracy": result.epoch_accuracy[-1],
            "test_accuracy": float((predict(out) == data.test.labels).mean()), "train_seconds": seconds,
            "epoch_seconds": float(np.sum(result.epoch_seconds))}


def table(rows: list[dict]) -> str:
    lines = ["trainer      seeds  val (float, last epoch)   test (deployed integer)   training s"]
    for t in TRAINERS:
        rs = [r for r in rows if r["trainer"] == t]
        if rs:
            v, a = [r["val_accuracy"] for r in rs], [r["test_accuracy"] for r in rs]
            lines.append(f"{t:12s} {len(rs):5d}  {np.mean(v):.4f} +- {np.std(v):.4f}         {np.mean(a):.4f} +- "
                         f"{np.std(a):.4f}           {np.mean([r['epoch_seconds'] for r in rs]):7.1f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.common_args(ap, "benchmarks/results/sltt_objective", merge=False)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = registry.resolve(apply_overrides(RunConfig(), ["data.name=digits"]))
    data = sets.load(cfg.data)
    rows = harness.load_partial(args.out, {"rows": []})["rows"]
    for seed in args.seeds:
        for trainer in TRAINERS:
            if any(r["trainer"] == trainer and r["seed"] == seed for r in rows):
                continue
            rows.append(run_one(cfg, trainer, seed, data))
            print(rows[-1], flush=True)
            harness.save_partial(args.out, {"rows": rows})
    text = table(rows)
    print(text)
    harness.write_json(args.out.with_suffix(".json"), {"protocol": __doc__.split("\n\n")[1], "config": cfg.to_dict(),
                                                      "rows": rows})
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")
    harness.partial_path(args.out).unlink(missing_ok=True)         # complete: the parts are in the results


if __name__ == "__main__":
    main()
