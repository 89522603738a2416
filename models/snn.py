"""Spiking networks of deployment neurons: dense and convolutional layers, trainable (float, QAT) and runnable in
integer mode (the golden model).

Input: binary spike frames (B, T, 2, H, W). Each layer is a synapse (a convolution, PyTorch's cross-correlation,
or a dense matrix on the flattened (C, H, W) map) followed by CUBA LIF deployment neurons, with Lava's one-step
delay: the synaptic input of a layer at step t is computed from the spikes that reached it at step t - 1. A sample
runs ``n_steps = T + depth`` steps (T input bins, then ``depth`` empty steps so the last bin reaches the output);
the class is the output neuron with the most spikes (lowest index on ties).

The forward pass runs layer by layer: one batched synapse call over all steps (the input of a feed-forward
layer does not depend on its own state), then the neuron's step loop. That is the same computation as stepping
every layer at every step (``pipeline/sltt.py`` does that), in far fewer and larger tensor operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from snntorch import surrogate
from torch import nn
from torch.nn import functional as F

from models.delays import Delays, delayed_input
from models.neuron import CubaParams, cuba_step_int, layer_over_time
from models.quant import quantize_weights, shift_int, shift_train

WEIGHT_SCALE = 128.0     # float parameter 1.0 = mantissa 128


@dataclass(frozen=True)
class ConvShape:
    """A convolution's geometry: PyTorch's ``conv2d`` with symmetric padding."""
    in_shape: tuple[int, int, int]     # (C, H, W)
    out_channels: int
    kernel: int
    stride: int
    padding: int

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        return self.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1


@dataclass(frozen=True)
class IntLayer:
    """One deployed layer: int8 weight mantissas ((out, in), or a (C_out, C_in, k, k) kernel with ``conv``),
    shared exponent, integer neuron parameters; ``recurrent``: (out, out) int8 mantissas of the layer's own
    spikes of the previous step (same exponent), for a recurrent layer (``models/rsnn.py``); ``delay``: trained
    synaptic delays (``models/delays.py``), each input then arriving ``1 + delay`` steps after its spike."""
    name: str
    weight: np.ndarray
    weight_exp: int
    neuron: CubaParams
    conv: ConvShape | None = None
    recurrent: np.ndarray | None = None
    delay: np.ndarray | None = None      # extra steps 0..delay_budget of each synapse (out, in) or input (in,)
    delay_budget: int = 0                # D: the extra steps the network runs for this layer's delays

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.conv.out_shape if self.conv else (self.weight.shape[0],)


@dataclass(frozen=True)
class DeployedNet:
    """The integer network that every backend must reproduce."""
    input_shape: tuple[int, ...]     # (2, H, W)
    layers: tuple[IntLayer, ...]

    def n_steps(self, n_bins: int) -> int:
        return n_bins + self.pad_steps

    @property
    def pad_steps(self) -> int:
        """Empty steps after the input's bins: one per layer and each layer's delay budget, so that the last bin
        reaches the output through the longest delays."""
        return sum(1 + layer.delay_budget for layer in self.layers)


@dataclass(frozen=True)
class Forward:
    """Training-mode record of one forward pass, every tensor (B, n_steps, N_l) per layer (flattened)."""
    spikes: list[torch.Tensor]
    drive: list[torch.Tensor]     # (v - theta) / theta before each spike decision (detached by default)


def pad_input(x: torch.Tensor, depth: int) -> torch.Tensor:
    """(B, T, ...) frames -> (B, T + depth, ...) spikes, with empty trailing steps.

    A pixel spikes in a bin when it has at least one event: ``min(count, 1)``. For integer counts this is
    ``count > 0``; for the float frames of a distillation it keeps a straight-through gradient below 1."""
    spikes = x.clamp(max=1)
    return torch.cat([spikes, spikes.new_zeros(spikes.shape[0], depth, *spikes.shape[2:])], dim=1)


class SNN(nn.Module):
    """Layers of CUBA LIF deployment neurons: ``convs`` (conv layers, in order) then dense layers of ``sizes``
    (the first is the flattened output of the last conv layer, or of the input)."""

    def __init__(self, input_shape: tuple[int, ...], convs: tuple[ConvShape, ...], sizes: tuple[int, ...],
                 neurons: tuple[CubaParams, ...], weight_exp: int, generator: torch.Generator, slope: float = 5.0,
                 init_std: tuple[float, ...] | None = None):
        super().__init__()
        self.input_shape, self.convs, self.sizes = tuple(input_shape), tuple(convs), tuple(sizes)
        self.neurons, self.weight_exp = tuple(neurons), weight_exp
        if init_std is None:         # mantissa units, scaled to the fan-in (24 at a fan-in of 256)
            init_std = tuple(24.0 / math.sqrt(self.fan_in(l) / 256) for l in range(len(neurons)))
        params = [torch.randn(c.out_channels, c.in_shape[0], c.kernel, c.kernel, generator=generator)
                  for c in convs] + [torch.randn(o, i, generator=generator) for i, o in zip(sizes[:-1], sizes[1:])]
        self.weights = nn.ParameterList(nn.Parameter(p * std / WEIGHT_SCALE) for p, std in zip(params, init_std))
        self.slope = slope
        self.spike_fn = surrogate.fast_sigmoid(slope=slope)
        if len(self.weights) != len(neurons):
            raise ValueError(f"{len(self.weights)} layers but {len(neurons)} neuron parameter sets")
        self.delays = nn.ModuleList()

    def add_delays(self, max_delay: int, kind: str, generator: torch.Generator) -> None:
        """Learnable delays of 0..``max_delay`` steps on every layer (``models/delays.py``); dense layers only."""
        if self.convs:
            raise ValueError("synaptic delays are for dense layers; this model has convolutions")
        self.delays = nn.ModuleList(Delays(self.out_size(l), self.in_size(l), max_delay, kind, generator)
                                    for l in range(self.depth))

    @property
    def depth(self) -> int:
        return len(self.neurons)

    @property
    def pad_steps(self) -> int:
        """Empty steps after the input (:meth:`DeployedNet.pad_steps`)."""
        return self.depth + sum(d.max_delay for d in self.delays)

    def fan_in(self, l: int) -> int:
        if l < len(self.convs):
            c = self.convs[l]
            return c.in_shape[0] * c.kernel ** 2
        return self.sizes[l - len(self.convs)]

    def in_size(self, l: int) -> int:
        return math.prod(self.convs[l].in_shape) if l < len(self.convs) else self.sizes[l - len(self.convs)]

    def out_size(self, l: int) -> int:
        return math.prod(self.convs[l].out_shape) if l < len(self.convs) else self.sizes[l - len(self.convs) + 1]

    def synapse(self, l: int, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Layer l's synaptic input ``shift(W (*) s, e)`` for spikes s (M, *in_shape) -> (M, N_out) flattened."""
        if l < len(self.convs):
            c = self.convs[l]
            x = s.reshape(-1, *c.in_shape).contiguous(memory_format=torch.channels_last)   # measured 2-5x faster
            acc = F.conv2d(x, q, stride=c.stride, padding=c.padding).flatten(1)
        else:
            acc = s.flatten(1) @ q.T
        return shift_train(acc, self.weight_exp)

    def forward(self, x: torch.Tensor, detach_drive: bool = True) -> Forward:
        """Training-mode spikes (and drive) of every layer, each (B, n_steps, N_l), from frames (B, T, 2, H, W).
        ``detach_drive=False`` keeps the drive in the graph (distillation differentiates through it)."""
        s = pad_input(x, self.pad_steps).float()
        B, n = s.shape[:2]
        spikes, drive = [], []
        for l, (w, p) in enumerate(zip(self.weights, self.neurons)):
            q = quantize_weights(w, WEIGHT_SCALE)
            if self.delays:
                arrived = delayed_input(s.flatten(2), q, self.weight_exp, self.delays[l]).unbind(1)
            else:   # the input at step t is made of the spikes of step t - 1; at step 0 nothing has arrived yet
                a = self.synapse(l, q, s[:, :-1].reshape(B * (n - 1), *s.shape[2:])).reshape(B, n - 1, -1)
                arrived = (a.new_zeros(B, a.shape[2]),) + a.unbind(1)   # per-step views: one gradient buffer
            s, d = layer_over_time(arrived, p, self.spike_fn, detach_drive)
            spikes.append(s)
            drive.append(d)
        return Forward(spikes, drive)

    def deployed(self) -> DeployedNet:
        """The integer network this model deploys as."""
        n_conv = len(self.convs)
        layers = tuple(
            IntLayer(f"conv{l + 1}" if l < n_conv else f"fc{l - n_conv + 1}",
                     quantize_weights(w.detach().cpu(), WEIGHT_SCALE).to(torch.int8).numpy(), self.weight_exp, p,
                     self.convs[l] if l < n_conv else None,
                     **({"delay": self.delays[l].integer(), "delay_budget": self.delays[l].max_delay}
                        if self.delays else {}))
            for l, (w, p) in enumerate(zip(self.weights, self.neurons)))
        return DeployedNet(self.input_shape, layers)


def golden_spikes(net: DeployedNet, x, batch: int = 250, tail: int = 0) -> list[np.ndarray]:
    """Integer-mode (int64) spikes of every layer, each (B, n_steps + tail, N_l) bool (flattened), for frames
    (B, T, ...) given as a numpy array or tensor, evaluated ``batch`` samples at a time: the golden model.
    ``tail`` runs the model on past each sample's n_steps, with no input (what batched Lava computes there)."""
    x = torch.as_tensor(x)
    parts = [_golden_batch(net, x[i:i + batch], tail) for i in range(0, len(x), batch)]
    return [np.concatenate(layer) for layer in zip(*parts)]


def _int_synapse(layer: IntLayer, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``W (*) s`` in exact integer arithmetic: int64 for a matrix; a convolution in float64, whose every partial
    sum (0/1 spikes times int8 mantissas, at most 128 x fan-in) is an integer far below 2**53, so exact."""
    if layer.conv is None:
        return s.flatten(1) @ w.T
    c = layer.conv
    acc = F.conv2d(s.reshape(-1, *c.in_shape).double(), w.double(), stride=c.stride, padding=c.padding)
    return torch.round(acc).long().flatten(1)


def _delay_groups(layer: IntLayer) -> list[tuple[int, torch.Tensor]]:
    """The layer's int64 weights as (extra delay, weights of the synapses with that delay) pairs."""
    w = torch.from_numpy(layer.weight.astype(np.int64))
    if layer.delay is None:
        return [(0, w)]
    d = torch.from_numpy(np.broadcast_to(layer.delay, layer.weight.shape).astype(np.int64))
    return [(int(k), torch.where(d == k, w, 0)) for k in torch.unique(d)]


def _golden_batch(net: DeployedNet, x: torch.Tensor, tail: int = 0) -> list[np.ndarray]:
    inp = pad_input(x, net.pad_steps + tail).long().flatten(2)
    B, n, _ = inp.shape
    groups = [_delay_groups(layer) for layer in net.layers]
    rs = [torch.from_numpy(layer.recurrent.astype(np.int64)) if layer.recurrent is not None else None
          for layer in net.layers]
    sizes = [math.prod(layer.out_shape) for layer in net.layers]
    past = [[] for _ in net.layers]              # each layer's input spikes of every step so far
    own = [torch.zeros(B, s, dtype=torch.long) for s in sizes]           # each layer's spikes of the previous step
    state = [(torch.zeros(B, s, dtype=torch.long),) * 2 for s in sizes]
    rec = [[] for _ in net.layers]
    with torch.no_grad():
        for t in range(n):
            src = inp[:, t]
            for l, (r, layer) in enumerate(zip(rs, net.layers)):
                # each delay's group and the recurrent weights are shifted on their own, then summed (as Lava does)
                a = sum((shift_int(_int_synapse(layer, w, past[l][t - 1 - d]), layer.weight_exp)
                         for d, w in groups[l] if t - 1 - d >= 0), torch.zeros(B, sizes[l], dtype=torch.long))
                if r is not None:
                    a = a + shift_int(own[l] @ r.T, layer.weight_exp)
                s, u, v = cuba_step_int(a, *state[l], layer.neuron)
                state[l], own[l] = (u, v), s.long()
                past[l].append(src)
                src = s.long()
                rec[l].append(s)
    return [torch.stack(r, dim=1).numpy() for r in rec]


def predict(output_spikes: np.ndarray) -> np.ndarray:
    """Class per sample from output spikes (B, n, classes): most spikes, lowest index on ties (the readout rule
    our graphs declare, and every benchmark's)."""
    return output_spikes.sum(axis=1).argmax(axis=1)


def undecided(output_spikes: np.ndarray) -> np.ndarray:
    """(B,) True where output spikes (B, n, classes) do not decide: no spike at all, or a tie for the most
    (:func:`predict` then gives the lowest index of the tie)."""
    counts = output_spikes.sum(axis=1)
    return (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
