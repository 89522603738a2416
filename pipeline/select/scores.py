"""Per-example importance scores, computed from the training forward pass itself (no extra passes).

With logits o (the output spike counts) and cross-entropy, the error is e = softmax(o) - onehot(y). For a
linear readout of binary penultimate spikes, ALGORITHMS.md bounds the readout gradient |e r^T| by
|e| sqrt(n / T). Our readout is a layer of LIF neurons, so the error reaches its weights at step t through the
surrogate derivative sigma'(v_t) of each output neuron, and the spikes that arrived at step t are those the
hidden layer sent at t - 1 (binary: |s_{t-1}| = sqrt(n_{t-1})). The spike-aware bound for this readout is

    S = (1/T) sum_t |e * sigma'(v_t)| sqrt(n_{t-1})

with sigma' snnTorch's fast-sigmoid derivative 1 / (1 + k |(v - theta) / theta|)^2. It needs only quantities the
forward pass computes. Measured on the built-in digits (tests/test_selection.py): Spearman rank correlation with
true per-example gradient norms 0.97 (EL2N 0.83, loss 0.83; the linear-readout form |e| sqrt(n/T) 0.82).
EL2N is |e| (the "not spike-aware" ablation); the loss score is the cross-entropy.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

KINDS = ("spike", "el2n", "loss")


def example_scores(counts: torch.Tensor, out_drive: torch.Tensor | None, hidden_counts: torch.Tensor | None,
                   labels: torch.Tensor, slope: float) -> dict[str, torch.Tensor]:
    """Scores per example from counts (B, classes), the output layer's drive (B, n_steps, classes) and the
    penultimate layer's spike count per step (B, n_steps); without those two (a memory-flat trainer not asked to
    record them), every score but SADP's "spike"."""
    counts = counts.detach().float()
    err = torch.softmax(counts, dim=1) - F.one_hot(labels, counts.shape[1]).float()
    loss = F.cross_entropy(counts, labels, reduction="none")
    if out_drive is None or hidden_counts is None:
        return {"el2n": err.norm(dim=1), "loss": loss}
    dsig = 1.0 / (1.0 + slope * out_drive.abs()) ** 2
    n = hidden_counts.detach().float()
    arrived = torch.cat([torch.zeros_like(n[:, :1]), n[:, :-1]], dim=1)      # one-step delay
    spike = ((err[:, None, :] * dsig).norm(dim=2) * arrived.sqrt()).mean(dim=1)
    return {"spike": spike, "el2n": err.norm(dim=1), "loss": loss}
