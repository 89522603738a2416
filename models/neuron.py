"""The deployment neuron: Loihi 2 CUBA LIF as Lava's bit-accurate model computes it (``PyLifModelBitAcc``).

Integer dynamics per time step, for synaptic input ``a`` (already scaled by the weight exponent):

    u = trunc(u * (4096 - (du + 1)) / 4096) + (a << 6)      24-bit, wraps once
    v = trunc(v * (4096 - dv) / 4096) + u + bias             24-bit, saturates at +-(2**23 - 1)
    s = v > (vth << 6);  v[s] = 0                             reset to zero, u keeps its value

``trunc`` rounds toward zero. Lava offsets ``du`` by one (4095 clears u every step); ``dv = 0`` is no leak.
:func:`cuba_step_int` is that contract in int64; :func:`cuba_step_train` is the same in floating point with
straight-through truncation and a surrogate spike, for training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

DECAY_SHIFT = 12         # decays are 12-bit fractions of 4096
STATE_SHIFT = 6          # synaptic input and threshold are MSB-aligned by 6 bits


@dataclass(frozen=True)
class CubaParams:
    """Integer parameters of one layer of deployment neurons."""
    du: int          # 12-bit current decay
    dv: int          # 12-bit voltage decay
    vth: int         # 17-bit threshold mantissa
    bias: int = 0    # effective bias (mantissa << exponent), added to v unshifted
    state_bits: int = field(kw_only=True)   # u and v are signed of this width: the chip's (hardware/chip/loihi2.py
                                            # Limits.state_bits), given by whoever builds the model

    @property
    def state_max(self) -> int:
        return 1 << (self.state_bits - 1)

    @property
    def u_keep(self) -> int:
        return 4096 - (self.du + 1)

    @property
    def v_keep(self) -> int:
        return 4096 - self.dv

    @property
    def theta(self) -> int:
        return self.vth << STATE_SHIFT


def _trunc_decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    # sign(x) * (|x * keep| >> 12): Lava's truncation toward zero of the int64 product
    prod = x * keep
    return torch.sign(prod) * (prod.abs() >> DECAY_SHIFT)


def cuba_step_int(a: torch.Tensor, u: torch.Tensor, v: torch.Tensor, p: CubaParams):
    """One integer step; all tensors int64. Returns ``(spikes, u, v)``."""
    u = _trunc_decay(u, p.u_keep) + (a << STATE_SHIFT)
    top = p.state_max
    u = torch.where(u > top, u - 2 * top, u)          # one wrap, as Lava does
    u = torch.where(u <= -top, u + 2 * top, u)
    v = _trunc_decay(v, p.v_keep) + u + p.bias
    v = v.clamp(-top + 1, top - 1)
    s = v > p.theta
    return s, u, torch.where(s, torch.zeros_like(v), v)


def trunc_ste(x: torch.Tensor) -> torch.Tensor:
    """Truncate toward zero in the forward pass, identity gradient."""
    return x + (torch.trunc(x) - x).detach()


def cuba_step_train(a: torch.Tensor, u: torch.Tensor, v: torch.Tensor, p: CubaParams,
                    spike_fn: Callable[[torch.Tensor], torch.Tensor]):
    """The same step in floating point for training: ``(spikes, u, v)``; the reset does not carry gradient."""
    u = trunc_ste(u * (p.u_keep / 4096)) + a * (1 << STATE_SHIFT)
    v = trunc_ste(v * (p.v_keep / 4096)) + u + p.bias
    v = v.clamp(-p.state_max + 1, p.state_max - 1)
    theta = max(p.theta, 1)
    s = spike_fn((v - theta) / theta)
    return s, u, v * (1 - s.detach())


def layer_over_time(arrived, p: CubaParams, spike_fn: Callable[[torch.Tensor], torch.Tensor], detach_drive: bool,
                    recurrent: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """The training-mode time loop of one layer, for every model: ``arrived`` is the synaptic input of each step
    (a sequence of (B, N)); ``recurrent`` gives the extra input from the layer's own spikes of the previous step.
    Returns the spikes and the drive ``(v - theta) / theta`` before each spike decision, each (B, n, N); the drive
    is detached unless ``detach_drive`` is False (distillation differentiates through it)."""
    u = v = own = arrived[0].new_zeros(arrived[0].shape)
    rec, drv = [], []

    def fire(z):
        drv.append(z.detach() if detach_drive else z)
        return spike_fn(z)
    for a in arrived:
        if recurrent is not None:
            a = a + recurrent(own)
        own, u, v = cuba_step_train(a, u, v, p, fire)
        rec.append(own)
    return torch.stack(rec, dim=1), torch.stack(drv, dim=1)
