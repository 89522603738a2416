"""Integer reference simulator: the NIR graph's layer chain in int64 numpy, batched over samples.

Same contract as Lava's ``PyLifModelBitAcc`` + ``PyDenseModelBitAcc`` (see models/neuron.py for the equations),
written independently of the model code so that golden == reference is a real cross-check.
"""
from __future__ import annotations

import numpy as np

from hardware.graph import Chain, input_spikes

_MAX = 2**23


def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> 12)


def _shift(acc: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(acc, exp) if exp >= 0 else np.right_shift(acc, -exp)


def simulate(chain: Chain, frames: np.ndarray) -> list[np.ndarray]:
    """Spikes of every layer, each (B, n_steps, N_l) bool, for frames (B, T, ...)."""
    return _run(chain, frames)[0]


def peak_fraction(chain: Chain, frames: np.ndarray) -> list[float]:
    """Per layer: the highest membrane voltage reached (before any reset), over all samples and steps, as a
    fraction of the threshold ``vth << 6``: how close a silent layer came to spiking."""
    return _run(chain, frames)[1]


def _run(chain: Chain, frames: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    x = input_spikes(chain, frames)
    B, n, _ = x.shape
    prev = [np.zeros((B, layer.weight.shape[1]), np.int64) for layer in chain.layers]
    u = [np.zeros((B, layer.weight.shape[0]), np.int64) for layer in chain.layers]
    v = [np.zeros_like(a) for a in u]
    out = [np.zeros((B, n, layer.weight.shape[0]), bool) for layer in chain.layers]
    peak = [-_MAX] * len(chain.layers)
    for t in range(n):
        src = x[:, t]
        for l, L in enumerate(chain.layers):
            a = _shift(prev[l] @ L.weight.T, L.weight_exp)       # input that arrived one step ago
            uu = _decay(u[l], 4096 - (L.du + 1)) + (a << 6)
            uu = np.where(uu > _MAX, uu - 2 * _MAX, uu)
            u[l] = np.where(uu <= -_MAX, uu + 2 * _MAX, uu)
            vv = np.clip(_decay(v[l], 4096 - L.dv) + u[l] + L.bias, -_MAX + 1, _MAX - 1)
            peak[l] = max(peak[l], int(vv.max(initial=-_MAX)))
            s = vv > (L.vth << 6)
            v[l] = np.where(s, 0, vv)
            out[l][:, t] = s
            prev[l], src = src, s.astype(np.int64)
    return out, [p / max(L.vth << 6, 1) for p, L in zip(peak, chain.layers)]
