"""A compact dense SNN of deployment neurons, trainable (float, QAT) and runnable in integer mode (golden).

Input: binary spike frames (B, T, 2, H, W), flattened. Each layer is Dense -> CUBA LIF with Lava's one-step delay:
the synaptic input of a layer at step t is the weighted sum of the spikes that reached it at step t - 1. A sample
runs ``n_steps = T + depth`` steps (T input bins, then ``depth`` empty steps so the last bin reaches the output);
the class is the output neuron with the most spikes (lowest index on ties).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from snntorch import surrogate
from torch import nn

from models.neuron import CubaParams, cuba_step_int, cuba_step_train
from models.quant import quantize_weights, shift_int, shift_train

WEIGHT_SCALE = 128.0     # float parameter 1.0 = mantissa 128


@dataclass(frozen=True)
class IntLayer:
    """One deployed layer: int8 weight mantissas (out, in), shared exponent, integer neuron parameters."""
    name: str
    weight: np.ndarray
    weight_exp: int
    neuron: CubaParams


@dataclass(frozen=True)
class DeployedNet:
    """The integer network that every backend must reproduce."""
    input_shape: tuple[int, ...]     # (2, H, W)
    layers: tuple[IntLayer, ...]

    def n_steps(self, n_bins: int) -> int:
        return n_bins + len(self.layers)


@dataclass(frozen=True)
class Forward:
    """Training-mode record of one forward pass, every tensor (B, n_steps, N_l) per layer."""
    spikes: list[torch.Tensor]
    drive: list[torch.Tensor]     # (v - theta) / theta before each spike decision (detached by default)


def pad_input(x: torch.Tensor, depth: int) -> torch.Tensor:
    """(B, T, ...) frames -> (B, T + depth, inputs) spikes, flattened, with empty trailing steps.

    A pixel spikes in a bin when it has at least one event: ``min(count, 1)``. For integer counts this is
    ``count > 0``; for the float frames of a distillation it keeps a straight-through gradient below 1."""
    spikes = x.flatten(2).clamp(max=1)
    return torch.cat([spikes, spikes.new_zeros(spikes.shape[0], depth, spikes.shape[2])], dim=1)


class DenseSNN(nn.Module):
    """Dense layers of CUBA LIF deployment neurons; sizes e.g. (2312, 256, 10)."""

    def __init__(self, sizes: tuple[int, ...], neurons: tuple[CubaParams, ...], weight_exp: int,
                 input_shape: tuple[int, ...], generator: torch.Generator, slope: float = 5.0,
                 init_std: tuple[float, ...] = (16.0, 24.0)):
        super().__init__()
        self.sizes, self.neurons, self.weight_exp = tuple(sizes), tuple(neurons), weight_exp
        self.input_shape = tuple(input_shape)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(o, i, generator=generator) * std / WEIGHT_SCALE)
            for i, o, std in zip(sizes[:-1], sizes[1:], init_std))
        self.spike_fn = surrogate.fast_sigmoid(slope=slope)

    def forward(self, x: torch.Tensor, detach_drive: bool = True) -> Forward:
        """Training-mode spikes (and drive) of every layer, each (B, n_steps, N_l), from frames (B, T, 2, H, W).
        ``detach_drive=False`` keeps the drive in the graph (distillation differentiates through it)."""
        inp = pad_input(x, len(self.neurons)).float()
        B, n, _ = inp.shape
        qs = [quantize_weights(w, WEIGHT_SCALE) for w in self.weights]
        dev = inp.device
        prev = [torch.zeros(B, s, device=dev) for s in self.sizes[:-1]]       # spikes arriving one step later
        state = [(torch.zeros(B, s, device=dev), torch.zeros(B, s, device=dev)) for s in self.sizes[1:]]
        rec, drive = [[] for _ in self.neurons], [[] for _ in self.neurons]
        for t in range(n):
            src = inp[:, t]
            for l, (q, p) in enumerate(zip(qs, self.neurons)):
                a = shift_train(prev[l] @ q.T, self.weight_exp)
                keep = (lambda z: z.detach()) if detach_drive else (lambda z: z)  # noqa: E731
                fn = lambda z, d=drive[l]: (d.append(keep(z)), self.spike_fn(z))[1]  # noqa: E731
                s, u, v = cuba_step_train(a, *state[l], p, fn)
                state[l], prev[l], src = (u, v), src, s
                rec[l].append(s)
        return Forward([torch.stack(r, dim=1) for r in rec], [torch.stack(d, dim=1) for d in drive])

    def deployed(self) -> DeployedNet:
        """The integer network this model deploys as."""
        layers = tuple(
            IntLayer(f"fc{l + 1}", quantize_weights(w.detach().cpu(), WEIGHT_SCALE).to(torch.int8).numpy(),
                     self.weight_exp, p)
            for l, (w, p) in enumerate(zip(self.weights, self.neurons)))
        return DeployedNet(self.input_shape, layers)


def golden_spikes(net: DeployedNet, x, batch: int = 250) -> list[np.ndarray]:
    """Integer-mode (int64) spikes of every layer, each (B, n_steps, N_l) bool, for frames (B, T, ...) given
    as a numpy array or tensor, evaluated ``batch`` samples at a time: the golden model."""
    x = torch.as_tensor(x)
    parts = [_golden_batch(net, x[i:i + batch]) for i in range(0, len(x), batch)]
    return [np.concatenate(layer) for layer in zip(*parts)]


def _golden_batch(net: DeployedNet, x: torch.Tensor) -> list[np.ndarray]:
    inp = pad_input(x, len(net.layers)).long()
    B, n, _ = inp.shape
    ws = [torch.from_numpy(layer.weight.astype(np.int64)) for layer in net.layers]
    prev = [torch.zeros(B, w.shape[1], dtype=torch.long) for w in ws]
    state = [(torch.zeros(B, w.shape[0], dtype=torch.long),) * 2 for w in ws]
    rec = [[] for _ in ws]
    with torch.no_grad():
        for t in range(n):
            src = inp[:, t]
            for l, (w, layer) in enumerate(zip(ws, net.layers)):
                a = shift_int(prev[l] @ w.T, layer.weight_exp)
                s, u, v = cuba_step_int(a, *state[l], layer.neuron)
                state[l], prev[l], src = (u, v), src, s.long()
                rec[l].append(s)
    return [torch.stack(r, dim=1).numpy() for r in rec]


def predict(output_spikes: np.ndarray) -> np.ndarray:
    """Class per sample from output spikes (B, n, classes): most spikes, lowest index on ties."""
    return output_spikes.sum(axis=1).argmax(axis=1)
