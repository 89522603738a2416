"""Why SLTT trains to lower accuracy than BPTT: the cosine between its weight gradient and exact gradients, per
layer, taken apart into what SLTT changes.

Protocol: the default conv model on the built-in digits (T = 8, the run's training split), trained with BPTT
for 0, 2 and 6 epochs (seed 0); at each checkpoint, eight fixed batches of 64 training examples (seeded draw),
and on the same weights four gradients, each summed over the eight batches:

- ``bptt_count``: the BPTT trainer's, cross-entropy of the final spike counts;
- ``step_full``: the exact gradient of SLTT's objective, sum_t CE(c_t) / n with c_t = c_{t-1} + s_t;
- ``step_local``: the same objective as SLTT writes it (c_{t-1} detached in step t's loss), every temporal
  route through the neuron state kept (exact backpropagation through time);
- ``sltt``: pipeline/train/sltt.py, the state carried between steps detached as well;
- ``traced``: the same with each weight learning from its input's eligibility trace (pipeline/train/traces.py:
  the temporal route through the layer's own state, resets aside).

Cosines per layer: sltt vs step_local (what dropping the temporal routes costs), step_local vs step_full (the
detached count history), step_full vs bptt_count (the objective), sltt vs bptt_count (all of it), and the
traced gradient against the same two.
``--set`` runs another configuration (e.g. the decays: model.du=4095 clears the current every step).

    .venv/bin/python benchmarks/sltt_gradients.py
    .venv/bin/python benchmarks/sltt_gradients.py --set model.du=4095 --out benchmarks/results/sltt_gradients_du4095
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from pipeline.architecture import build_model
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets
from pipeline.train import loop, sltt
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

PAIRS = (("sltt", "step_local"), ("step_local", "step_full"), ("step_full", "bptt_count"), ("sltt", "bptt_count"),
         ("traced", "step_local"), ("traced", "bptt_count"))


def _grads(model, loss_fn) -> list[torch.Tensor]:
    for w in model.weights:
        w.grad = None
    loss_fn()
    return [w.grad.detach().clone() for w in model.weights]


def _count_loss(model, x, y, w):
    out = model(x)
    (w * F.cross_entropy(out.spikes[-1].sum(1), y, reduction="none")).sum().backward()


def _step_loss(model, x, y, w, detach_history: bool):
    s = model(x).spikes[-1]
    c = torch.cumsum(s, 1)
    logits = (c - s).detach() + s if detach_history else c
    B, n, C = logits.shape
    ce = F.cross_entropy(logits.reshape(B * n, C), y.repeat_interleave(n), reduction="none")
    ((w.repeat_interleave(n) * ce).sum() / n).backward()


GRADIENTS = {
    "bptt_count": _count_loss,
    "step_full": lambda m, x, y, w: _step_loss(m, x, y, w, False),
    "step_local": lambda m, x, y, w: _step_loss(m, x, y, w, True),
    "sltt": lambda m, x, y, w: sltt.backward(m, x, y, w),
    "traced": lambda m, x, y, w: sltt.backward(m, x, y, w, traced=True),
}


def cosine(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """None where a gradient is zero (a layer that gets none, e.g. a silent readout at initialisation)."""
    a, b = a.flatten().double(), b.flatten().double()
    return float(a @ b / (a.norm() * b.norm())) if a.norm() > 0 and b.norm() > 0 else None


def checkpoint_row(model, frames, labels, batches, epochs: int) -> dict:
    summed = {}
    for name, loss in GRADIENTS.items():
        total = None
        for idx in batches:
            x, y = torch.from_numpy(frames[idx]), torch.from_numpy(labels[idx]).long()
            g = _grads(model, lambda: loss(model, x, y, torch.full((len(idx),), 1 / len(idx))))
            total = g if total is None else [a + b for a, b in zip(total, g)]
        summed[name] = total
    return {"epochs": epochs, **{f"{a} vs {b}": [cosine(u, v) for u, v in zip(summed[a], summed[b])] for a, b in PAIRS},
            "norm_sltt_over_bptt_count": [float(u.norm() / v.norm()) if v.norm() > 0 else None
                                          for u, v in zip(summed["sltt"], summed["bptt_count"])]}


def table(rows: list[dict], settings: list[str], layers: int) -> str:
    lines = [f"SLTT's weight gradient against exact ones, cosine per layer (1..{layers}), the default conv model on "
             "the digits" + (f" with {' '.join(settings)}" if settings else "") + "; 8 batches of 64, seed 0"]
    for r in rows:
        lines.append(f"after {r['epochs']} BPTT epochs:")
        for a, b in PAIRS:
            lines.append(f"  {a + ' vs ' + b:26s} " + "  ".join("   n/a" if c is None else f"{c:+.3f}"
                                                                for c in r[f"{a} vs {b}"]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, nargs="+", default=[0, 2, 6])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sltt_gradients"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = registry.resolve(apply_overrides(RunConfig(), ["data.name=digits", "train.eval_every=0"] + args.overrides))
    tr = sets.load(cfg.data).train
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(tr.labels), 64, replace=False) for _ in range(8)]
    model, trained, rows = build_model(cfg, tr.frames.shape[2:], len(tr.classes)), 0, []
    for epochs in sorted(args.epochs):
        if epochs > trained:
            model = loop.train(apply_overrides(cfg, [f"train.epochs={epochs}"]), tr.frames, tr.labels,
                               len(tr.classes)).model
            trained = epochs
        rows.append(checkpoint_row(model, tr.frames, tr.labels, batches, epochs))
        print(json.dumps(rows[-1]), flush=True)
    text = table(rows, args.overrides, model.depth)
    print(text)
    harness.write_json(args.out.with_suffix(".json"), {"protocol": __doc__.split("\n\n")[1], "settings": args.overrides,
                                                      "config": cfg.to_dict(), "rows": rows})
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
