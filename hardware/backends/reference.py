"""The integer reference simulator of a :class:`hardware.graph.ir.Network`: numpy int64, batched over samples.

The equations are in ``hardware/graph/ir.py`` (Lava's ``PyLifModelBitAcc`` with ``Dense`` / ``DelayDense`` / ``Conv``);
a convolution is computed as a convolution (strided windows times the shared kernel), never as an unrolled
matrix. Products run as float64 BLAS calls where that is exact: every partial sum of spikes (0/1) times integer
mantissas is an integer far below 2**53 (checked per projection), so the result converts back to int64 without
rounding. The same code runs the float model of a discretised foreign graph (``integer=False``), with the same
timing, so that the two differ by quantisation alone. Written independently of the trained model's golden
evaluation (``models/``), so that golden == reference is a real cross-check.
"""
from __future__ import annotations

import numpy as np

from hardware.graph.conv import conv2d
from hardware.graph.ir import STATE_MAX, Conv, Dense, Network
from hardware.judge.trace import Trace

EXACT = 2.0**52


def trunc_decay(x: np.ndarray, keep: int) -> np.ndarray:
    """``trunc(x * keep / 4096)``: Lava's truncation toward zero of the int64 product."""
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> 12)


def shift(acc: np.ndarray, exp: int) -> np.ndarray:
    """Apply a weight exponent to an int64 accumulator: left shift, or an arithmetic (floor) right shift."""
    return np.left_shift(acc, exp) if exp >= 0 else np.right_shift(acc, -exp)


def apply(synapse: Dense | Conv, s: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """``W (*) s`` for spikes ``s`` (B, in) flattened; returns (B, out) float64 (integer-valued when ``weight``
    is the integer mantissas). ``weight`` overrides the synapse's (the float model's weights)."""
    w = synapse.weight if weight is None else weight
    if isinstance(synapse, Dense):
        return s.astype(np.float64) @ w.T.astype(np.float64)
    x = s.reshape(len(s), *synapse.in_shape)
    return conv2d(x, w, synapse.stride, synapse.padding, synapse.dilation, synapse.groups).reshape(len(s), -1)


def _by_delay(p) -> list[tuple[int, np.ndarray | None]]:
    """A dense projection with per-synapse delays splits into one masked weight matrix per delay."""
    if np.ndim(p.delay) == 0:
        return [(int(p.delay), None)]
    w = p.synapse.weight
    return [(int(d), np.where(p.delay == d, w, 0)) for d in np.unique(p.delay)]


RESETS = ("zero", "subtract", "subtract-next")


def simulate(net: Network, x: np.ndarray, integer: bool = True, batch: int = 200, reset: str = "zero") -> Trace:
    """Run binary input spikes ``x`` (B, n_steps, inputs) through ``net``: integer (Lava's arithmetic) or the
    float model of a discretised graph (``integer=False``); ``batch`` samples at a time (bounded memory).

    ``reset`` (float model only) is what a spike does to v: ``zero`` (Loihi 2, NIR, Norse: v = 0), ``subtract``
    (sinabs, Rockpool, Spyx: v -= threshold at once, so the rest decays with v) or ``subtract-next`` (snnTorch's
    default ``reset_mechanism="subtract"``: the spike of step t takes the threshold off v at step t + 1, undecayed).
    """
    if reset not in RESETS:
        raise ValueError(f"reset {reset!r}: expected one of {RESETS}")
    if integer and reset != "zero":
        raise ValueError("the integer model resets to zero, as Loihi 2 does")
    parts = [_simulate(net, x[i:i + batch], integer, reset) for i in range(0, len(x), batch)]
    return Trace({k: np.concatenate([t.spikes[k] for t in parts]) for k in net.populations},
                 {k: np.concatenate([t.voltage[k] for t in parts]) for k in parts[0].voltage},
                 {k: max(t.peak[k] for t in parts) for k in parts[0].peak})


def _simulate(net: Network, x: np.ndarray, integer: bool, reset: str = "zero") -> Trace:
    if not integer and net.float_model is None:
        raise ValueError("this network has no float model (it was read exactly from integer metadata)")
    B, n, _ = x.shape
    dtype = np.int64 if integer else np.float64
    pops = net.populations
    fm = net.float_model
    horizon = n + net.max_delay + 1
    arrive = {k: np.zeros((horizon, B, p.size), dtype) for k, p in pops.items()}
    u = {k: np.zeros((B, p.size), dtype) for k, p in pops.items()}
    v = {k: np.broadcast_to(p.v0 if integer else fm.populations[k].v0, (B, p.size)).astype(dtype)
         for k, p in pops.items()}
    spikes = {k: np.zeros((B, n, p.size), bool) for k, p in pops.items()}
    volt = {k: np.zeros((B, n, p.size), dtype) for k, p in pops.items() if not p.spiking}
    peak = {k: -np.inf for k, p in pops.items() if p.spiking}
    owed = {k: np.zeros((B, p.size), dtype) for k, p in pops.items()}       # subtract-next: taken off next step
    for i, p in enumerate(net.projections):
        if integer and float(np.abs(p.synapse.weight).sum(axis=tuple(range(1, p.synapse.weight.ndim))).max(
                initial=0)) >= EXACT:
            raise ValueError(f"projection {p.name}: weights too large for exact float64 accumulation")
    parts = [(p, _by_delay(p), None if integer else fm.weights[i]) for i, p in enumerate(net.projections)]
    ones = np.ones((B, 1), np.int64)
    for t in range(n):
        for k, p in pops.items():
            if integer:
                uu = trunc_decay(u[k], 4095 - p.du) + (arrive[k][t] << 6)
                uu = np.where(uu > STATE_MAX, uu - 2 * STATE_MAX, uu)
                u[k] = np.where(uu <= -STATE_MAX, uu + 2 * STATE_MAX, uu)
                vv = np.clip(trunc_decay(v[k], 4096 - p.dv) + u[k] + p.bias, -STATE_MAX + 1, STATE_MAX - 1)
                s = vv > (p.vth << 6)
                if p.spiking and vv.size:
                    peak[k] = max(peak[k], float(vv.max()) / (p.vth << 6))
            else:
                f = fm.populations[k]
                u[k] = f.alpha * u[k] + 64.0 * arrive[k][t]
                vv = f.beta * v[k] + u[k] + f.bias - owed[k]
                s = vv > f.theta
                if p.spiking and vv.size:
                    peak[k] = max(peak[k], float((vv / f.theta).max()))
                if reset == "subtract-next":
                    owed[k] = np.where(s, f.theta, 0.0)
            v[k] = np.where(s, 0 if reset == "zero" else vv - (f.theta if reset == "subtract" else 0), vv)
            spikes[k][:, t] = s
            if k in volt:
                volt[k][:, t] = v[k]
        for proj, split, wf in parts:
            src = x[:, t] if proj.source == "input" else ones if proj.source == "bias" else spikes[proj.source][:, t]
            for d, w in split:
                if t + d >= horizon:
                    continue
                if integer:
                    a = np.rint(apply(proj.synapse, src, w)).astype(np.int64)
                    arrive[proj.target][t + d] += shift(a, proj.synapse.exp)
                else:
                    arrive[proj.target][t + d] += apply(proj.synapse, src, wf if w is None else
                                                        np.where(proj.delay == d, wf, 0))
    return Trace(spikes, volt, peak)
