"""Quantisation-aware pieces: 8-bit weight mantissas with a per-layer exponent, straight-through rounding.

Synaptic input of a layer is ``a = shift(sum_j q_ij s_j, e)``: a left shift for ``e >= 0``, an arithmetic right
shift (floor) for ``e < 0``, as Lava's Dense applies ``weight_exp`` to the accumulated input.
"""
from __future__ import annotations

import torch

WEIGHT_BITS = 8
Q_MIN, Q_MAX = -(2 ** (WEIGHT_BITS - 1)), 2 ** (WEIGHT_BITS - 1) - 1


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even in the forward pass, identity gradient."""
    return x + (torch.round(x) - x).detach()


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


def quantize_weights(w: torch.Tensor, scale: float) -> torch.Tensor:
    """Float parameters -> int8 mantissas (as float, with a straight-through gradient inside the range)."""
    return torch.clamp(round_ste(w * scale), Q_MIN, Q_MAX)


def shift_train(acc: torch.Tensor, exp: int) -> torch.Tensor:
    """Apply the weight exponent in floating point (floor for negative exponents)."""
    return acc * 2.0**exp if exp >= 0 else floor_ste(acc * 2.0**exp)


def shift_int(acc: torch.Tensor, exp: int) -> torch.Tensor:
    """Apply the weight exponent to an int64 accumulator exactly (``>>`` floors, as numpy's right_shift)."""
    return acc << exp if exp >= 0 else acc >> -exp
