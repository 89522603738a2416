"""A recurrent spiking network of deployment neurons: input channels -> recurrent CUBA LIF layer(s) -> readout.

Each hidden layer l receives its input layer's spikes and its own spikes of the previous step, through int8
weights with the shared exponent (Lava's one-step delay on both):

    a_l[t] = shift(W_l s_{l-1}[t-1], e) + shift(R_l s_l[t-1], e)          (R_l: all-to-all recurrent weights)

then the CUBA LIF step of ``models/neuron.py``; the readout is a feed-forward layer of the same neurons. Trained
quantisation-aware like ``models/snn.py`` (straight-through rounding to int8 mantissas, surrogate spikes); the
integer model (``deployed()``) is evaluated by the golden model of ``models/snn.py``, which runs recurrent layers
(``IntLayer.recurrent``) too.
"""
from __future__ import annotations

import math

import torch
from snntorch import surrogate
from torch import nn

from models.delays import Delays, delayed_input
from models.neuron import CubaParams, layer_over_time
from models.quant import quantize_weights, shift_train
from models.snn import WEIGHT_SCALE, DeployedNet, Forward, IntLayer, pad_input


class RSNN(nn.Module):
    """``sizes`` = (inputs, hidden..., classes): every hidden layer recurrent, the last one the readout."""

    def __init__(self, input_shape: tuple[int, ...], sizes: tuple[int, ...], neurons: tuple[CubaParams, ...],
                 weight_exp: int, generator: torch.Generator, slope: float = 5.0):
        super().__init__()
        if len(sizes) < 3 or len(neurons) != len(sizes) - 1:
            raise ValueError(f"sizes {sizes} and {len(neurons)} neuron parameter sets do not make a recurrent net")
        self.input_shape, self.sizes, self.neurons, self.weight_exp = tuple(input_shape), tuple(sizes), \
            tuple(neurons), weight_exp
        self.spike_fn = surrogate.fast_sigmoid(slope=slope)
        scale = lambda fan_in, std: std / math.sqrt(fan_in / 256) / WEIGHT_SCALE      # noqa: E731  (mantissas)
        self.inputs = nn.ParameterList(nn.Parameter(torch.randn(o, i, generator=generator) * scale(i, 24.0))
                                       for i, o in zip(sizes[:-1], sizes[1:]))
        self.recurrent = nn.ParameterList(nn.Parameter(torch.randn(h, h, generator=generator) * scale(h, 8.0))
                                          for h in sizes[1:-1])
        self.delays = nn.ModuleList()

    def add_delays(self, max_delay: int, kind: str, generator: torch.Generator) -> None:
        """Learnable delays of 0..``max_delay`` steps on every layer's input weights (``models/delays.py``); the
        recurrent weights keep their one step."""
        self.delays = nn.ModuleList(Delays(o, i, max_delay, kind, generator)
                                    for i, o in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def pad_steps(self) -> int:
        """Empty steps after the input (:meth:`models.snn.DeployedNet.pad_steps`)."""
        return self.depth + sum(d.max_delay for d in self.delays)

    @property
    def depth(self) -> int:
        return len(self.neurons)

    @property
    def hidden(self) -> int:
        return len(self.recurrent)

    def _q(self, w: torch.Tensor) -> torch.Tensor:
        return quantize_weights(w, WEIGHT_SCALE)

    def forward(self, x: torch.Tensor, detach_drive: bool = True) -> Forward:
        """Training-mode spikes and drive of every layer, each (B, n_steps, N_l), from frames (B, T, C)."""
        s = pad_input(x, self.pad_steps).float().flatten(2)
        B, n = s.shape[:2]
        spikes, drive = [], []
        for l, p in enumerate(self.neurons):
            w = self._q(self.inputs[l])
            if self.delays:
                a_in = delayed_input(s, w, self.weight_exp, self.delays[l])
            else:
                a_in = shift_train(s[:, :-1] @ w.T, self.weight_exp)       # input of step t from spikes of t - 1
                a_in = torch.cat([a_in.new_zeros(B, 1, a_in.shape[2]), a_in], dim=1)
            r = self._q(self.recurrent[l]) if l < self.hidden else None
            own = (lambda prev, r=r: shift_train(prev @ r.T, self.weight_exp)) if r is not None else None
            s, d = layer_over_time(a_in.unbind(1), p, self.spike_fn, detach_drive, own)
            spikes.append(s)
            drive.append(d)
        return Forward(spikes, drive)

    def deployed(self) -> DeployedNet:
        """The integer network: recurrent layers ``rec1``, ``rec2``, then the readout ``out``."""
        q = lambda w: quantize_weights(w.detach().cpu(), WEIGHT_SCALE).to(torch.int8).numpy()   # noqa: E731
        delay = lambda l: {"delay": self.delays[l].integer(), "delay_budget": self.delays[l].max_delay} \
            if self.delays else {}                                                                   # noqa: E731
        layers = tuple(IntLayer(f"rec{l + 1}" if l < self.hidden else "out", q(self.inputs[l]), self.weight_exp,
                                p, recurrent=q(self.recurrent[l]) if l < self.hidden else None, **delay(l))
                       for l, p in enumerate(self.neurons))
        return DeployedNet(self.input_shape, layers)
