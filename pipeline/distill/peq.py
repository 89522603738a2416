"""PEQ-N: a straight-through probabilistic integer quantiser for synthetic event frames.

Forward: z is clamped to [0, N], then ``floor(z) + Bernoulli(z - floor(z))``, so the output is an integer event
count in [0, N] whose expectation is the clamped input. Backward: the gradient passes unchanged where
0 <= z <= N and is zero outside (the clamp's gradient).
"""
from __future__ import annotations

import torch


class _PEQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, n_max: float, noise: torch.Tensor) -> torch.Tensor:
        zc = z.clamp(0, n_max)
        low = torch.floor(zc)
        ctx.save_for_backward((z >= 0) & (z <= n_max))
        return low + (noise < zc - low).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


def peq(z: torch.Tensor, n_max: int, generator: torch.Generator) -> torch.Tensor:
    """Integer frames in [0, n_max] with E[peq(z)] = clamp(z, 0, n_max); straight-through gradient."""
    return _PEQ.apply(z, float(n_max), torch.rand(z.shape, generator=generator, dtype=z.dtype))
