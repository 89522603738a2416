"""SLTT and SLTT-K for the recurrent network (``models/rsnn.py``): backward inside the time loop.

As for the feed-forward network (``pipeline/train/sltt.py``), the temporal route of backpropagation is ignored:
the neuron state (u, v) carried from one step to the next is detached, and so is a layer's own spikes of the
previous step where they return through its recurrent weights (a temporal route too): the recurrent weights
still learn, from the detached previous spikes as their input. The loss is per step on the spike count so far,
``CE(c_t, y) / n_steps``, and with Lava's one-step delay the spatial path of output step t runs diagonally: hidden
layer l at step ``t - (depth - 1 - l)``. Each step is computed for every layer with a graph whose inputs are
detached, except the spikes of the layer below at the previous step, so the graph of the loss at step t spans
one diagonal and is freed by its backward: memory does not grow with T.

SLTT-K backpropagates the loss of K output steps only (drawn as for the feed-forward network); the other steps
still build their one-step graphs, which are dropped unused. The weight quantiser runs once per batch; its
outputs are leaves that collect every step's gradient, pushed through the quantiser at the end.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from models.neuron import CubaParams, cuba_step_train
from models.quant import quantize_weights, shift_train
from models.rsnn import RSNN
from models.snn import WEIGHT_SCALE
from pipeline.train.sltt import Record
from pipeline.train.traces import dense, trace_step


def _synapse(q: torch.Tensor, x: torch.Tensor, e: int, traces: dict, key, p: CubaParams | None) -> torch.Tensor:
    """``shift(x @ q.T, e)``; with neuron parameters p, its weight gradient from x's trace (kept in ``traces``)."""
    if p is None:
        return shift_train(x @ q.T, e)
    trace, traces[key] = trace_step(x.detach(), traces.get(key), p)
    return dense(q, x, trace, e)


def backward(model: RSNN, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
             steps: set[int] | None = None, traced: bool = False, record: bool = True) -> tuple[Record, int]:
    """One batch forward, one backward per (chosen) output step; gradients accumulate in the model's weights.
    ``weights`` include the batch normalisation (the loss of step t is ``sum(weights * CE(c_t, y)) / n``).
    ``traced``: the input and recurrent weights learn from their inputs' eligibility traces (e-prop).
    ``record``: keep the per-step records SADP's score needs (O(T) per sample); without, only the counts, and
    nothing in the step grows with T (the input is read one step at a time)."""
    L, H = model.depth, model.hidden
    B, n = x.shape[0], x.shape[1] + L
    quantised = [quantize_weights(w, WEIGHT_SCALE) for w in list(model.inputs) + list(model.recurrent)]
    leaves = [q.detach().requires_grad_(True) for q in quantised]
    w_in, w_rec = leaves[:L], leaves[L:]
    e = model.weight_exp
    sizes = [w.shape[0] for w in w_in]
    zeros = lambda *shape: torch.zeros(*shape, device=x.device)          # noqa: E731
    state = [(zeros(B, k), zeros(B, k)) for k in sizes]
    prev = [zeros(B, k) for k in sizes]                   # each layer's spikes of the previous step (with graph)
    traces = {}                                           # (layer, "in" | "rec") -> trace state, with traced
    drive_out = []

    def fire(z):
        drive_out.append(z.detach())
        return model.spike_fn(z)
    out = (zeros(B, n, sizes[-1]), zeros(B, n, sizes[-1]), zeros(B, n)) if record else None
    count = zeros(B, sizes[-1])
    calls = 0
    for t in range(n):
        # bin t - 1's spikes arrive at step t (pad_input's arithmetic, one step at a time)
        src = x[:, t - 1].clamp(max=1).float().flatten(1) if 0 < t <= x.shape[1] else zeros(B, w_in[0].shape[1])
        now = []
        for l in range(L):
            p = model.neurons[l] if traced else None
            a = _synapse(w_in[l], src, e, traces, (l, "in"), p)
            if l < H:
                a = a + _synapse(w_rec[l], prev[l].detach(), e, traces, (l, "rec"), p)
            drive_out.clear()
            u, v = state[l]
            s, u, v = cuba_step_train(a, u.detach(), v.detach(), model.neurons[l], fire)
            state[l] = (u.detach(), v.detach())
            now.append(s)
            src = prev[l]                                 # the layer below at the previous step, with its graph
        if out is not None:
            out[0][:, t], out[1][:, t], out[2][:, t] = now[-1].detach(), drive_out[-1], now[L - 2].detach().sum(1)
        before, count = count, count + now[-1].detach()
        if steps is None or t in steps:
            ce = F.cross_entropy(before + now[-1], y, reduction="none")
            loss = (weights * ce).sum() / n
            if loss.requires_grad:
                loss.backward(retain_graph=False)
                calls += 1
        prev = [s if l < L - 1 else s.detach() for l, s in enumerate(now)]
    grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
    torch.autograd.backward(quantised, grads)
    return Record(*(out or (None, None, None)), counts=count), calls
