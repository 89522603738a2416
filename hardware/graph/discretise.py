"""Continuous-time NIR neuron nodes -> discrete-time float populations, under a stated convention.

NIR stores continuous-time dynamics and no time step; every framework discretises on export and import in its own
way. We read a graph under one stated convention (``--source`` presets, or ``--dt`` and ``--method``)::

    exp   (zero-order hold): keep = exp(-dt / tau), gain = 1 - keep
    euler (forward Euler):   keep = 1 - dt / tau,   gain = dt / tau        (needs dt <= tau)

    CubaLIF / CubaLI: I[t] = keep_syn I[t-1] + gain_syn w_in S[t];  v[t] = keep_mem v[t-1] + gain_mem (v_leak + r I[t])
    LIF / LI:         v[t] = keep v[t-1] + gain (v_leak + r S[t])
    IF / I:           v[t] = v[t-1] + dt r S[t]
    Threshold:        z[t] = S[t] > threshold (stateless)
    spiking nodes:    z[t] = v[t] > v_threshold, then v = v_reset

where S[t] is the node's input at step t (the sum of its incoming edges). Every population also gets Lava's timing:
a spike crosses a synapse in one step, plus the steps of any ``Delay`` on the way (round(delay / dt)).

v is kept relative to v_reset (Loihi resets to 0), so v_reset becomes a bias ``-(1 - keep) v_reset`` and an
initial value ``-v_reset``; the input gain G (S -> change of v) multiplies every incoming weight.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import nir
import numpy as np

from hardware.errors import GraphError

# How frameworks read NIR's continuous parameters (their exporters' conventions), each read from the exporter's
# source (and the neuron model it exports): method and dt, and where a framework's own update does not follow
# NIR's ODE under that method, how its input reaches the state:
#   syn_gain: "ode" (the method's 1 - keep_syn), "unit" (I jumps by w_in S) or "keep" (I jumps by keep_syn w_in S)
#   mem_gain: "ode" (the method's gain times r) or "unit" (v (or I into v) taken with gain 1; r is not used)
#   current_lag: steps by which a CubaLIF's voltage sees its synaptic current late (Norse: v uses last step's i)
# reset: what a spike does to v in the framework's own simulator (Loihi 2 resets to 0); `verify` runs the float
# graph both ways and warns with the measured difference (hardware/backends/reference.py RESETS). What no preset
# models: spiking at v >= threshold (sinabs, Loihi: v > threshold) and Spyx's output of the previous step's spike.
PRESETS = {
    # NIR's own reading of the ODEs; our exporter (export/nir_export.py) writes graphs for it. dt from metadata.
    "nir": {"method": "exp", "dt": None, "reset": "zero"},
    # snnTorch 1.0 (snntorch/export_nir.py): dt = 1e-4, tau = dt / (1 - beta), r = tau / dt, w_in = tau_syn / dt,
    # i.e. forward Euler at that dt gives back snnTorch's own beta v + I.
    # Reset: Leaky's default reset_mechanism="subtract" takes the threshold off at the next step (mem_reset of the
    # previous mem), undecayed.
    "snntorch": {"method": "euler", "dt": 1e-4, "reset": "subtract-next"},
    # sinabs (sinabs/nir.py): works in time steps: LIF tau = tau_mem in steps, r = 1, v_leak = 0; IAF -> IF with
    # r = 1. Its LIF (norm_input=True, the default) is v = alpha v + (1 - alpha) x with alpha = exp(-1 / tau_mem):
    # exp at dt = 1 (one step per time unit). Read at a physical dt (1 ms) its graphs go silent.
    # Reset: MembraneSubtract (the default reset_fn) subtracts the threshold once v reaches it.
    "sinabs": {"method": "exp", "dt": 1.0, "reset": "subtract"},
    # Norse (norse/torch/utils/export_nir.py): tau = 1 / tau_*_inv, r = 1, w_in = 1, dt not stored (Norse's default
    # 1e-3). LIFBox: v += dt / tau_mem (v_leak - v + x): Euler. LIFCell (CubaLIF): v += dt / tau_mem (v_leak - v +
    # i[t-1]), then i = (1 - dt / tau_syn) i + x: the current jumps by the input and reaches v one step later.
    # Reset: to v_reset (zero), as Loihi.
    "norse": {"method": "euler", "dt": 1e-3, "syn_gain": "unit", "current_lag": 1, "reset": "zero"},
    # Rockpool (rockpool/nn/modules/torch/nir.py, LIFTorch): tau_syn, tau_mem, r = tau_mem exp(-dt / tau_mem) / dt,
    # dt not stored (Rockpool's default 1e-3). LIFTorch: i = beta (i + x), v = alpha v + i with alpha, beta =
    # exp(-dt / tau): exp decays, the input scaled by beta, the current into v with gain 1.
    # Reset: v -= spikes x threshold.
    "rockpool": {"method": "exp", "dt": 1e-3, "syn_gain": "keep", "mem_gain": "unit", "reset": "subtract"},
    # Spyx (spyx/nir.py): tau = dt / (1 - beta) (and alpha), r = beta, with the dt given to its to_nir (not stored:
    # give --dt). Its LIF is v = beta v + x, CuBaLIF i = alpha i + x, v = beta v + i: Euler decays, gain 1.
    # Reset: the threshold is subtracted (its LIF's default reset).
    "spyx": {"method": "euler", "dt": None, "syn_gain": "unit", "mem_gain": "unit", "reset": "subtract"},
}
METHODS = ("exp", "euler")


@dataclass(frozen=True)
class FloatNeurons:
    """A discretised population, in units of the graph's v (relative to v_reset)."""
    name: str
    kind: str
    shape: tuple[int, ...]
    spiking: bool
    alpha: float                   # current keep (0: no synaptic current)
    beta: float                    # voltage keep
    theta: np.ndarray              # threshold per neuron (inf when not spiking)
    bias: np.ndarray
    v0: np.ndarray
    gain: np.ndarray               # per neuron: input S -> change of v

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def keep_gain(tau: np.ndarray, dt: float, method: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    tau = np.asarray(tau, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "exp":
            keep = np.where(tau > 0, np.exp(-dt / tau), 0.0)
        else:
            if np.any((tau > 0) & (tau < dt)):
                raise GraphError(f"node {name!r}: tau {float(tau.min()):g} < dt {dt:g}; forward Euler is unstable "
                                 "there (use --method exp or a smaller --dt)")
            keep = np.where(tau > 0, 1.0 - dt / tau, 0.0)
    return keep, 1.0 - keep


def _one(values: np.ndarray, name: str, node, field: str) -> float:
    """Lava's LIF has one du and one dv per process: per-neuron decays (of ``node.field``) must agree."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size and not np.allclose(v, v[0], rtol=1e-9, atol=0):
        tau = np.asarray(getattr(node, field), dtype=np.float64).ravel()
        raise GraphError(f"node {name!r}: {field} differs between neurons ({tau.min():g}..{tau.max():g} s); Lava's "
                         "LIF has one decay per population")
    return float(v[0]) if v.size else 0.0


def _arr(node, key: str, shape) -> np.ndarray:
    v = getattr(node, key, None)
    return np.broadcast_to(np.asarray(0.0 if v is None else v, dtype=np.float64), shape).astype(np.float64).ravel()


def node_shape(node, name: str) -> tuple[int, ...]:
    for key in ("tau_mem", "tau", "r", "threshold", "v_threshold"):
        v = getattr(node, key, None)
        if v is not None:
            return tuple(int(s) for s in np.shape(v)) or (1,)
    raise GraphError(f"node {name!r} ({type(node).__name__}): cannot tell its size")


def _times_r(gm: np.ndarray, r: np.ndarray) -> np.ndarray:
    # tau = inf with r = inf (no leak, as export/nir_export.py writes it): the limit of gm r is 1
    with np.errstate(invalid="ignore"):
        return np.where((gm == 0) & np.isinf(r), 1.0, gm * r)


# (alpha, beta, voltage gain gm, input gain G) of each neuron type, per neuron
def _mem(gm: np.ndarray, r: np.ndarray, conv: dict) -> np.ndarray:
    return np.ones_like(gm) if conv.get("mem_gain") == "unit" else _times_r(gm, r)


def _cuba(node, name, shape, dt, method, r, conv):
    ks, gs = keep_gain(_arr(node, "tau_syn", shape), dt, method, name)
    km, gm = keep_gain(_arr(node, "tau_mem", shape), dt, method, name)
    gs = {"unit": np.ones_like(gs), "keep": ks}.get(conv.get("syn_gain"), gs)
    return (_one(ks, name, node, "tau_syn"), _one(km, name, node, "tau_mem"), gm,
            _mem(gm, r, conv) * gs * _arr(node, "w_in", shape))


def _lif(node, name, shape, dt, method, r, conv):
    km, gm = keep_gain(_arr(node, "tau", shape), dt, method, name)
    return 0.0, _one(km, name, node, "tau"), gm, _mem(gm, r, conv)


def _integrator(node, name, shape, dt, method, r, conv):
    return 0.0, 1.0, np.zeros(len(r)), np.ones(len(r)) if conv.get("mem_gain") == "unit" else dt * r


def _threshold(node, name, shape, dt, method, r, conv):
    return 0.0, 0.0, np.zeros(len(r)), np.ones(len(r))


DYNAMICS: dict[type, tuple[Callable, bool]] = {     # NIR type: (dynamics, spiking)
    nir.CubaLIF: (_cuba, True), nir.CubaLI: (_cuba, False), nir.LIF: (_lif, True), nir.LI: (_lif, False),
    nir.IF: (_integrator, True), nir.I: (_integrator, False), nir.Threshold: (_threshold, True)}
NEURONS = tuple(DYNAMICS)


def population(name: str, node, dt: float, method: str, convention: dict | None = None) -> FloatNeurons:
    """The discretised population of a neuron node (see the module docstring for the equations); ``convention``:
    a preset's input gains (see PRESETS)."""
    kind = type(node).__name__
    shape = node_shape(node, name)
    n = math.prod(shape)
    r = _arr(node, "r", shape) if hasattr(node, "r") else np.ones(n)
    dynamics, spiking = DYNAMICS[type(node)]
    alpha, beta, gm, gain = dynamics(node, name, shape, dt, method, r, convention or {})
    if not np.all(np.isfinite(gain)):
        raise GraphError(f"node {name!r} ({kind}): input gain is not finite under {method} with dt {dt:g} "
                         "(r or w_in infinite?)")
    v_reset = _arr(node, "v_reset", shape) if hasattr(node, "v_reset") else np.zeros(n)
    if spiking:
        theta = _arr(node, "threshold" if kind == "Threshold" else "v_threshold", shape) - v_reset
        if np.any(theta <= 0):
            raise GraphError(f"node {name!r} ({kind}): v_threshold must exceed v_reset (Loihi spikes above a positive "
                             "threshold and resets to 0)")
    else:
        theta = np.full(n, np.inf)
    bias = gm * _arr(node, "v_leak", shape) - (1.0 - beta) * v_reset if kind != "Threshold" else np.zeros(n)
    return FloatNeurons(name, kind, shape, spiking, alpha, beta, theta, bias, -v_reset, gain)
