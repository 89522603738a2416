"""SLTT and SLTT-K (Meng et al., ICCV 2023): backward inside the time loop, so memory does not grow with T.

SLTT ignores the temporal route of backpropagation: the neuron state (u, v) carried from one step to the next is
detached, and the loss is per step. Two adaptations to our network, both ours (the official code,
github.com/qymeng94/SLTT, uses a non-spiking readout and no synaptic delay):

- Per-step loss on the spike-count readout: ``CE(c_t, y) / n_steps`` with ``c_t = c_{t-1} (detached) + s_t``,
  the output spikes counted so far; at the last step ``c_t`` is the count that decides the class.
- Lava's one-step synaptic delay: layer l's spikes at step tau reach the output at step tau + (depth - 1 - l),
  so the "spatial" path runs diagonally through time. Each layer's spikes keep their graph exactly until the
  next layer has used them at the next step; every piece of graph is used by one loss term and freed by its
  backward. The retained graph is therefore bounded by the depth, not by T.

SLTT-K backpropagates only the loss at K randomly chosen output steps; a layer's step is computed with a graph
only when it feeds one of those steps, and everything else runs without one. The loss is not rescaled by n/K,
as in the official code. Weight quantisation (a straight-through function) runs once per batch: its output is a
leaf that collects the gradients of every step, pushed through the quantiser to the float weights at the end.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from models.neuron import cuba_step_train
from models.quant import quantize_weights
from models.snn import SNN, WEIGHT_SCALE, Forward, pad_input


def backward(model: SNN, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
             steps: set[int] | None = None) -> tuple[Forward, int]:
    """Run one batch forward, calling backward inside the time loop; gradients accumulate in the model's weights.

    ``steps``: the output steps whose loss is backpropagated (None = all, SLTT). ``weights``: per-example loss
    weights that already include the batch normalisation (1 / B for a plain mean): the loss of step t is
    ``sum(weights * CE(c_t, y)) / n_steps``. Returns the detached record of the forward pass (as
    :class:`Forward`) and the number of backward calls made.
    """
    depth = model.depth
    inp = pad_input(x, depth).float().flatten(2)
    B, n, _ = inp.shape
    qs = [quantize_weights(w, WEIGHT_SCALE) for w in model.weights]
    leaves = [q.detach().requires_grad_(True) for q in qs]
    dev = inp.device
    prev = [torch.zeros(B, model.in_size(l), device=dev) for l in range(depth)]
    state = [(torch.zeros(B, model.out_size(l), device=dev),) * 2 for l in range(depth)]
    rec, drive = [[] for _ in model.neurons], [[] for _ in model.neurons]
    count = torch.zeros(B, model.out_size(depth - 1), device=dev)
    calls = 0
    for t in range(n):
        src = inp[:, t]
        for l, (q, p) in enumerate(zip(leaves, model.neurons)):
            with torch.set_grad_enabled(steps is None or t + depth - 1 - l in steps):
                a = model.synapse(l, q, prev[l])
                s, u, v = cuba_step_train(a, *state[l], p, _recording(model.spike_fn, drive[l]))
            state[l], prev[l], src = (u.detach(), v.detach()), src, s
            rec[l].append(s.detach())
        count = count + src
        if (steps is None or t in steps) and count.requires_grad:
            loss = (weights * F.cross_entropy(count, y, reduction="none")).sum() / n
            loss.backward()
            calls += 1
        count = count.detach()
    grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
    torch.autograd.backward(qs, grads)
    return Forward([torch.stack(r, dim=1) for r in rec], [torch.stack(d, dim=1) for d in drive]), calls


def _recording(spike_fn, record: list):
    """The spike function, keeping a detached copy of each drive it sees."""
    def fire(z: torch.Tensor) -> torch.Tensor:
        record.append(z.detach())
        return spike_fn(z)
    return fire


def choose_steps(n_steps: int, k: int, rng: np.random.Generator) -> set[int]:
    """K distinct output steps for SLTT-K, uniformly at random."""
    return set(rng.choice(n_steps, size=min(k, n_steps), replace=False).tolist())


class SavedTensorMeter:
    """Bytes of tensors autograd holds for backward (the retained graph), live and at peak, while active.

    Uses ``torch.autograd.graph.saved_tensors_hooks``: each saved tensor is wrapped in a handle that counts its
    bytes until the graph that holds it is freed. A tensor saved twice counts twice (an upper bound).
    """

    def __init__(self):
        self.live = self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda h: h.tensor)

    def _pack(self, tensor: torch.Tensor) -> "_Saved":
        return _Saved(self, tensor)

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


class _Saved:
    __slots__ = ("meter", "tensor", "nbytes")

    def __init__(self, meter: SavedTensorMeter, tensor: torch.Tensor):
        self.meter, self.tensor, self.nbytes = meter, tensor, tensor.numel() * tensor.element_size()
        meter.live += self.nbytes
        meter.peak = max(meter.peak, meter.live)

    def __del__(self):
        self.meter.live -= self.nbytes
