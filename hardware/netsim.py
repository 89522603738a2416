"""Float and integer simulation of a :class:`hardware.foreign.Net`, batched over samples, in numpy.

The integer simulation is the reference for foreign graphs: Lava's ``PyLifModelBitAcc`` and ``Dense`` /
``DelayDense`` equations (the same contract as ``hardware/reference.py``, generalised to any topology, synaptic
delays, biases and initial voltages). The float simulation runs the discretised graph as written, with the same
timing, so that the two differ by quantisation only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware.foreign import Net
from hardware.reference import _MAX, _decay, _shift


@dataclass
class Trace:
    spikes: dict[str, np.ndarray]      # population -> (B, n_steps, N) bool
    voltage: dict[str, np.ndarray]     # non-spiking population -> (B, n_steps, N) (int64 or float, lambda-scaled)
    peak: dict[str, float] = field(default_factory=dict)   # spiking population -> highest v / threshold reached


def _by_delay(w: np.ndarray, delay: np.ndarray) -> list[tuple[int, np.ndarray]]:
    return [(int(d), np.where(delay == d, w, 0)) for d in np.unique(delay)]


def simulate(net: Net, x: np.ndarray, integer: bool = True) -> Trace:
    """Run ``x`` (B, n_steps, inputs) binary through ``net``; integer (Lava's arithmetic) or float."""
    B, n, _ = x.shape
    dtype = np.int64 if integer else np.float64
    pops = net.populations
    horizon = n + net.max_delay + 1
    arrive = {k: np.zeros((horizon, B, p.size), dtype) for k, p in pops.items()}
    u = {k: np.zeros((B, p.size), dtype) for k, p in pops.items()}
    v = {k: np.broadcast_to(p.v0 if integer else p.v0_f, (B, p.size)).astype(dtype) for k, p in pops.items()}
    spikes = {k: np.zeros((B, n, p.size), bool) for k, p in pops.items()}
    volt = {k: np.zeros((B, n, p.size), dtype) for k, p in pops.items() if not p.spiking}
    split = [(p, _by_delay(p.q if integer else p.w, p.delay)) for p in net.projections]
    ones = np.ones((B, 1), dtype)
    peak = {k: -np.inf for k, p in pops.items() if p.spiking}
    for t in range(n):
        for k, p in pops.items():
            if integer:
                uu = _decay(u[k], 4095 - p.du) + (arrive[k][t] << 6)
                uu = np.where(uu > _MAX, uu - 2 * _MAX, uu)
                u[k] = np.where(uu <= -_MAX, uu + 2 * _MAX, uu)
                vv = np.clip(_decay(v[k], 4096 - p.dv) + u[k] + p.bias, -_MAX + 1, _MAX - 1)
                s = vv > (p.vth << 6)
            else:
                u[k] = p.alpha * u[k] + 64.0 * arrive[k][t]
                vv = p.beta * v[k] + u[k] + p.bias_f
                s = vv > p.theta
            if k in peak and vv.size:
                peak[k] = max(peak[k], float(vv.max()) / (p.vth << 6) if integer else float((vv / p.theta).max()))
            v[k] = np.where(s, 0, vv)
            spikes[k][:, t] = s
            if k in volt:
                volt[k][:, t] = v[k]
        for proj, parts in split:
            src = x[:, t] if proj.source == "input" else ones if proj.source == "bias" else spikes[proj.source][:, t]
            src = src.astype(dtype)
            for d, w in parts:
                if t + d < horizon:
                    a = src @ w.T
                    arrive[proj.target][t + d] += _shift(a, proj.exp) if integer else a
    return Trace(spikes, volt, peak)
