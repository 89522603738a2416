"""SADP's mechanism, measured (../shared/ALGORITHMS.md "What an implementation must show"): the spike-aware
score's Spearman rank correlation with true per-example gradient norms, against the loss and EL2N scores; and the
weighted estimator's cosine with the full-batch gradient and its variance against uniform sampling at the same
budget (r = 0.5).

Protocol (the same as tests/test_selection.py): 300 built-in training digits, T = 8, no augmentation; the dense
model (2312 -> 64 -> 10, du 1024, dv 256, 8 epochs) and the default conv model (4 epochs), partly trained with the
run's trainer, seed 0; per-example gradients by one backward each; 400 draws of each sampler.

    .venv/bin/python benchmarks/sadp_score.py
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from pipeline.config import RunConfig, apply_overrides
from pipeline.data import dataset, registry
from pipeline.select import diagnostics
from pipeline.train import loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

ARCH = {"dense": ["model.arch=dense", "model.du=1024", "model.dv=256", "model.hidden=64", "train.epochs=8"],
        "conv": ["model.arch=conv", "train.epochs=4"]}
OUT = Path("benchmarks/results/sadp_score")


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for arch, items in ARCH.items():
            cfg = registry.resolve(apply_overrides(RunConfig(), [
                "data.n_train=300", "data.n_test=10", "data.n_bins=8", f"data.cache={cache}", *items,
                "train.augment_shift=0"]))
            tr, _ = dataset.load(cfg.data)
            model = loop.train(cfg, tr.frames, tr.labels, 10).model
            grads, scores = diagnostics.per_example(model, tr.frames, tr.labels, cfg.train.surrogate_slope)
            rows.append({"model": arch, "examples": len(tr.labels),
                         "spearman": diagnostics.rank_correlations(grads, scores),
                         **diagnostics.estimator_moments(grads, scores)})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| model | Spearman: spike-aware score | EL2N | loss | cosine of the mean SADP estimate with the full "
             "gradient | variance, uniform / SADP |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['spearman']['spike']:.3f} | {r['spearman']['el2n']:.3f} | "
              f"{r['spearman']['loss']:.3f} | {r['cosine']:.4f} | {r['variance_ratio_uniform_over_sadp']:.1f}x |"
              for r in rows]
    harness.write_json(OUT.with_suffix(".json"), {"protocol": __doc__.split("\n\n")[1], "rows": rows}, indent=2)
    harness.write_text(OUT.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
