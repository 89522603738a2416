"""Trained synaptic delays: a feed-forward projection whose spikes arrive ``d`` extra steps late, ``d`` an integer in
``0..D`` learnt per synapse (out, in) or per presynaptic neuron (in,), as Loihi 2's delayed synapses (Lava's
``DelayDense``, delays 0..62) and NIR's ``Delay`` node carry them.

The input of step t is then (``shift`` applies the weight exponent, one group of equal delays at a time, as Lava's
``DelayDense`` accumulates each delay's weights apart before the exponent):

    a[t] = sum_d shift(W_d s[t - 1 - d], e),    W_d = W where the synapse's delay is d, else 0

Training follows DCLS (Hammouamri et al. 2023, "Learning delays in spiking neural networks using dilated
convolutions with learnable spacings"): each delay is a real position ``p`` in [0, D] and the synapse a kernel
over the D + 1 taps of a delay line, a Gaussian of width ``sigma`` centred on ``p`` whose width shrinks from D / 2
to 0.23 steps over the first quarter of training (DCLS's schedule for SHD). Unlike DCLS, whose forward pass blurs the spikes over the kernel until the end, the forward pass here is
already the deployed one: a one-hot kernel at ``round(p)``, with the Gaussian's gradient passed straight through
(as the weights' rounding is), so the trained model and the integer model compute the same spikes at every step
of training. DCLS's own code (the ``dcls`` package) is a convolution layer for dense tensors, without integer
deployment; these few lines are what the straight-through form needs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.quant import shift_train

KINDS = ("synapse", "neuron")
SIGMA_END = 0.23         # the kernel's width from a quarter of training on (DCLS's SHD setting: the width falls
SIGMA_UNTIL = 0.25       # exponentially from D / 2 to 0.23 steps over the first quarter of the epochs)


class Delays(nn.Module):
    """Learnable delays of one projection of ``n_in`` inputs onto ``n_out`` neurons: per synapse or per input
    neuron (``kind``), each in 0..``max_delay`` steps, drawn uniformly at the start (DCLS's initialisation)."""

    def __init__(self, n_out: int, n_in: int, max_delay: int, kind: str, generator: torch.Generator):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"delay kind {kind!r}: one of {KINDS}")
        if max_delay < 1:
            raise ValueError(f"max_delay {max_delay}: at least 1 step")
        self.max_delay, self.kind = max_delay, kind
        shape = (n_out, n_in) if kind == "synapse" else (n_in,)
        self.pos = nn.Parameter(torch.rand(shape, generator=generator) * max_delay)
        self.sigma = max_delay / 2.0

    def anneal(self, progress: float) -> None:
        """The kernel's width for the fraction ``progress`` of training done: exponentially from D / 2 down to
        :data:`SIGMA_END` by :data:`SIGMA_UNTIL` of training, then constant."""
        f = min(max(progress, 0.0) / SIGMA_UNTIL, 1.0)
        start = max(self.max_delay / 2.0, SIGMA_END)
        self.sigma = start * (SIGMA_END / start) ** f

    def clamp_(self) -> None:
        """Keep every position within 0..D (called after each optimiser step)."""
        with torch.no_grad():
            self.pos.clamp_(0, self.max_delay)

    def integer(self) -> np.ndarray:
        """The deployed delays: int64 steps, (out, in) or (in,)."""
        return torch.round(self.pos.detach().clamp(0, self.max_delay)).long().cpu().numpy()

    def taps(self) -> torch.Tensor:
        """(*pos.shape, D + 1) weights of the delay line's taps: one-hot at the deployed delay in the forward
        pass, the gradient of a normalised Gaussian around ``pos`` in the backward pass."""
        D = self.max_delay
        p = self.pos.clamp(0, D)
        hard = F.one_hot(torch.round(p.detach()).long(), D + 1).to(p.dtype)
        k = torch.arange(D + 1, dtype=p.dtype, device=p.device)
        soft = torch.softmax(-0.5 * ((k - p[..., None]) / self.sigma) ** 2, dim=-1)
        return hard + (soft - soft.detach())


def delayed_input(s: torch.Tensor, q: torch.Tensor, exp: int, delays: Delays) -> torch.Tensor:
    """The synaptic input (B, n, out) of every step from the spikes ``s`` (B, n, in) of every step through weight
    mantissas ``q`` (out, in) and ``delays``: the input of step t from the spikes of step t - 1 - d (zero before
    the first step)."""
    B, n, _ = s.shape
    D, taps = delays.max_delay, delays.taps()
    x = F.pad(s[:, :-1].transpose(1, 2), (D + 1, 0))          # (B, in, D + n): step t - 1 - d at index t + D - d
    if exp < 0:                                   # each delay's group is shifted (floored) on its own
        mask = taps if delays.kind == "synapse" else taps[None].expand(q.shape[0], -1, -1)
        return sum(shift_train(x[:, :, D - d:D - d + n].transpose(1, 2) @ (q * mask[..., d]).T, exp)
                   for d in range(D + 1))
    if delays.kind == "neuron":                   # a depthwise delay line, then the weights
        line = F.conv1d(x, taps.flip(-1)[:, None, :], groups=taps.shape[0])
        return shift_train(line.transpose(1, 2) @ q.T, exp)
    return shift_train(F.conv1d(x, (q[..., None] * taps).flip(-1)).transpose(1, 2), exp)


def learnt(net) -> dict | None:
    """What a deployed network (``models.snn.DeployedNet``) learnt of its delays, for the report: per layer the
    histogram over 0..D of its synapses' (or input neurons') delays, their mean and the share at 0; None without
    delays."""
    layers = [layer for layer in net.layers if layer.delay is not None]
    if not layers:
        return None
    D = max(layer.delay_budget for layer in layers)
    rows = [{"layer": layer.name, "histogram": np.bincount(np.asarray(layer.delay).ravel(), minlength=D + 1).tolist(),
             "mean": round(float(np.mean(layer.delay)), 3), "max": int(np.max(layer.delay)),
             "at_zero": round(float(np.mean(np.asarray(layer.delay) == 0)), 4)} for layer in layers]
    kind = "synapse" if np.ndim(layers[0].delay) == 2 else "neuron"
    return {"max_delay": D, "kind": kind, "layers": rows}


POSITION_LR = 100.0      # the positions' learning rate, times the weights' (DCLS trains them 100x faster: a delay
                         # moves in steps, a weight in fractions of one)


def param_groups(model: nn.Module) -> list[dict]:
    """The model's parameters for its optimiser: the delays' positions in a group of their own, with
    ``lr_scale`` = :data:`POSITION_LR` and no weight decay (decay would pull every delay towards 0)."""
    pos = [m.pos for m in model.modules() if isinstance(m, Delays)]
    ids = {id(p) for p in pos}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": rest}] + ([{"params": pos, "weight_decay": 0.0, "lr_scale": POSITION_LR}] if pos else [])


def anneal(model: nn.Module, progress: float) -> None:
    """Every delay kernel's width for the fraction ``progress`` of training done."""
    for m in model.modules():
        if isinstance(m, Delays):
            m.anneal(progress)


def clamp(model: nn.Module) -> None:
    """Every delay back within 0..D after an optimiser step."""
    for m in model.modules():
        if isinstance(m, Delays):
            m.clamp_()
