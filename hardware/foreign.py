"""NIR graphs from any framework -> an integer network for Loihi 2, with the discretisation stated and the
quantisation error measured.

NIR stores continuous-time dynamics and no time step; every framework discretises on export and import in its own
way. We read a graph under one stated convention (``--source`` presets below, or ``--dt`` and ``--method``):

    exp   (zero-order hold): keep = exp(-dt / tau), gain = 1 - keep
    euler (forward Euler):   keep = 1 - dt / tau,   gain = dt / tau        (needs dt <= tau)

    CubaLIF / CubaLI: I[t] = keep_syn I[t-1] + gain_syn w_in S[t];  v[t] = keep_mem v[t-1] + gain_mem (v_leak + r I[t])
    LIF / LI:         v[t] = keep v[t-1] + gain (v_leak + r S[t])
    IF / I:           v[t] = v[t-1] + dt r S[t]
    Threshold:        z[t] = S[t] > threshold (stateless)
    spiking nodes:    z[t] = v[t] > v_threshold, then v = v_reset

where S[t] is the node's input at step t (the sum of its incoming edges). Every population also gets Lava's timing:
a spike crosses a synapse in one step (Dense), plus the steps of any ``Delay`` on the way (round(delay / dt)).
The float simulation in ``hardware/netsim.py`` uses the same timing, so float vs integer differences are
quantisation alone.

Quantisation, per population: v is scaled by lambda_i = vth * 64 / (v_threshold_i - v_reset_i), one 17-bit vth per
population (Lava's LIF has one), so per-neuron thresholds become per-neuron weight scales. Each incoming projection
gets one 8-bit weight mantissa matrix and one exponent. Decays become Lava's 12-bit du, dv (u keeps (4095 - du) /
4096, v keeps (4096 - dv) / 4096); v_leak and v_reset become a 13-bit bias mantissa with a 3-bit exponent per
neuron and an initial v = -v_reset (v is stored relative to v_reset, whose reset is 0 as on Loihi). Biases of Affine
and Conv nodes become a projection from an always-on source, so they reach synaptic currents exactly as spikes do.
Linear nodes between populations (Affine, Linear, Conv1d/2d, pooling, Scale, Flatten) are composed into one dense
matrix per path (a convolution becomes its unrolled matrix: exact, but Loihi would store it as shared kernels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np

from hardware import nir_checks
from hardware.graph import GraphError
from hardware.linear_ops import LINEAR, linear_op
from hardware.loihi2 import Limits

# How frameworks read NIR's continuous parameters (their exporters' conventions), each checked in the exporter's
# source installed here. For other frameworks give --dt and --method (their exporters' documentation says which).
PRESETS = {
    # NIR's own reading of the ODEs; our exporter (export/nir_export.py) writes graphs for it. dt from metadata.
    "nir": {"method": "exp", "dt": None},
    # snnTorch 1.0 (snntorch/export_nir.py): dt = 1e-4, tau = dt / (1 - beta), r = tau / dt, w_in = tau_syn / dt,
    # i.e. forward Euler at that dt gives back snnTorch's own beta v + I.
    "snntorch": {"method": "euler", "dt": 1e-4},
}
METHODS = ("exp", "euler")
SPIKING = {"CubaLIF": True, "LIF": True, "IF": True, "Threshold": True, "CubaLI": False, "LI": False, "I": False}
VTH = 2048            # threshold mantissa we aim for: v's threshold at 2**17, 6 bits of headroom in 24-bit state


@dataclass
class Population:
    name: str
    kind: str                      # NIR node type
    shape: tuple[int, ...]
    spiking: bool
    # float (as written, discretised, in units of lambda-scaled v)
    alpha: float                   # current keep (0: no synaptic current)
    beta: float                    # voltage keep
    theta: np.ndarray              # threshold (inf when not spiking)
    bias_f: np.ndarray
    v0_f: np.ndarray
    scale: np.ndarray              # lambda per neuron
    # integer (Lava LIF)
    du: int = 0
    dv: int = 0
    vth: int = 0
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    v0: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def bias(self) -> np.ndarray:
        return self.bias_mant << self.bias_exp


@dataclass
class Projection:
    source: str                    # "input", "bias" (always on) or a population name
    target: str
    path: list[str]                # NIR nodes on the way
    w: np.ndarray                  # (target, source) float, in units of the input a (u += a << 6)
    delay: np.ndarray              # (target, source) int steps >= 1
    q: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    exp: int = 0

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass
class Net:
    input_shape: tuple[int, ...]
    populations: dict[str, Population]
    projections: list[Projection]
    readout: list[str]             # populations that feed Output nodes
    dt: float
    method: str
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def max_delay(self) -> int:
        return max((int(p.delay.max()) for p in self.projections), default=1)


def _keep_gain(tau: np.ndarray, dt: float, method: str, name: str) -> tuple[np.ndarray, np.ndarray]:
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


def _node_shape(node, name: str) -> tuple[int, ...]:
    for key in ("tau_mem", "tau", "r", "threshold", "v_threshold"):
        v = getattr(node, key, None)
        if v is not None:
            return tuple(int(s) for s in np.shape(v)) or (1,)
    raise GraphError(f"node {name!r} ({type(node).__name__}): cannot tell its size")


def _population(name: str, node, dt: float, method: str) -> tuple[Population, np.ndarray]:
    """The population and its per-neuron input gain G (S -> change of v, before lambda)."""
    kind = type(node).__name__
    shape = _node_shape(node, name)
    n = int(np.prod(shape))
    r = _arr(node, "r", shape) if hasattr(node, "r") else np.ones(n)
    v_leak = _arr(node, "v_leak", shape)
    v_reset = _arr(node, "v_reset", shape) if hasattr(node, "v_reset") else np.zeros(n)
    def times_r(gm: np.ndarray) -> np.ndarray:
        # tau = inf with r = inf (no leak, as export/nir_export.py writes it): the limit of gm r is 1
        with np.errstate(invalid="ignore"):
            return np.where((gm == 0) & np.isinf(r), 1.0, gm * r)

    if kind in ("CubaLIF", "CubaLI"):
        ks, gs = _keep_gain(_arr(node, "tau_syn", shape), dt, method, name)
        km, gm = _keep_gain(_arr(node, "tau_mem", shape), dt, method, name)
        alpha, beta = _one(ks, name, node, "tau_syn"), _one(km, name, node, "tau_mem")
        gain = times_r(gm) * gs * _arr(node, "w_in", shape)
    elif kind in ("LIF", "LI"):
        km, gm = _keep_gain(_arr(node, "tau", shape), dt, method, name)
        alpha, beta, gain = 0.0, _one(km, name, node, "tau"), times_r(gm)
    elif kind in ("IF", "I"):
        alpha, beta, gm, gain = 0.0, 1.0, np.zeros(n), dt * r
    elif kind == "Threshold":
        alpha, beta, gm, gain = 0.0, 0.0, np.zeros(n), np.ones(n)
    else:  # pragma: no cover - callers check the type
        raise GraphError(f"node {name!r}: type {kind} is not a neuron")
    if not np.all(np.isfinite(gain)):
        raise GraphError(f"node {name!r} ({kind}): input gain is not finite under {method} with dt {dt:g} "
                         "(r or w_in infinite?)")
    spiking = SPIKING[kind]
    if spiking:
        thr = _arr(node, "threshold" if kind == "Threshold" else "v_threshold", shape)
        theta = thr - v_reset
        if np.any(theta <= 0):
            raise GraphError(f"node {name!r} ({kind}): v_threshold must exceed v_reset (Loihi spikes above a positive "
                             "threshold and resets to 0)")
        scale = VTH * 64.0 / theta
    else:
        theta, scale = np.full(n, np.inf), np.ones(n)     # set from the weights later
    bias = gm * v_leak - (1.0 - beta) * v_reset if kind != "Threshold" else np.zeros(n)
    pop = Population(name, kind, shape, spiking, alpha, beta, theta, bias, -v_reset, scale)
    return pop, gain


# --- reading the graph ------------------------------------------------------------------------------------------

def read(path: str | Path) -> nir.NIRGraph:
    return nir_checks.read(path)


def _flat_nodes(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list]:
    """Nested NIRGraph nodes inlined (NIR 1.0 subgraphs, e.g. a recurrent CubaLIF block), names joined by '.'.

    An edge to a subgraph enters at its Input node, an edge from it leaves at its Output node."""
    nodes, edges, inner_io = {}, [], {}
    for k, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub, sub_edges = _flat_nodes(node, f"{prefix}{k}.")
            ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise GraphError(f"subgraph {prefix}{k!r}: needs one Input and one Output node")
            inner_io[f"{prefix}{k}"] = (f"{prefix}{k}.{ins[0]}", f"{prefix}{k}.{outs[0]}")
            nodes.update(sub)
            edges += sub_edges
        else:
            nodes[f"{prefix}{k}"] = node

    def resolve(name: str, leaving: bool) -> str:
        if name in nodes:
            return name
        if name in inner_io:
            return inner_io[name][1 if leaving else 0]
        raise GraphError(f"edge refers to unknown node {name!r}")

    edges += [(resolve(f"{prefix}{a}", True), resolve(f"{prefix}{b}", False)) for a, b in graph.edges]
    return nodes, edges


def load(graph: nir.NIRGraph | str | Path, dt: float | None = None, method: str | None = None,
         source: str = "nir", limits: Limits = Limits()) -> Net:
    """Read a NIR graph (any framework's) into a quantised :class:`Net` under the stated discretisation."""
    if source not in PRESETS:
        raise GraphError(f"unknown source convention {source!r}; choose one of {sorted(PRESETS)}")
    g = graph if isinstance(graph, nir.NIRGraph) else read(graph)
    preset = PRESETS[source]
    method = method or preset["method"]
    if method not in METHODS:
        raise GraphError(f"unknown discretisation {method!r}; choose one of {list(METHODS)}")
    if dt is not None and not (math.isfinite(dt) and dt > 0):
        raise GraphError(f"--dt {dt:g} is not a time step: give a positive, finite number of seconds")
    nir_checks.validate(g)
    md = g.metadata or {}
    dt = dt if dt is not None else (float(md["dt"]) if "dt" in md else preset["dt"])
    if dt is None:
        raise GraphError("NIR stores no time step and the graph's metadata has no 'dt': give --dt (seconds)")
    nodes, edges = _flat_nodes(g)
    supported = LINEAR + (nir.Input, nir.Output, nir.CubaLIF, nir.CubaLI, nir.LIF, nir.LI, nir.IF, nir.I,
                          nir.Threshold)
    for k, node in nodes.items():
        if not isinstance(node, supported):
            raise GraphError(f"node {k!r}: type {type(node).__name__} is not supported (supported: "
                             f"{', '.join(sorted(c.__name__ for c in supported))})")
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input) and "." not in k]
    if len(inputs) != 1:
        raise GraphError(f"graph has {len(inputs)} top-level Input nodes; expected exactly one")
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise GraphError(f"edge ({a!r}, {b!r}) refers to an unknown node")
        succ[a].append(b)
    in_node = nodes[inputs[0]]
    in_shape = tuple(int(s) for s in np.asarray(in_node.input_type["input"]).ravel())
    pops, gains = {}, {}
    for k, node in nodes.items():
        if type(node).__name__ in SPIKING:
            pops[k], gains[k] = _population(k, node, dt, method)

    projections, readout, notes = [], [], []
    sources = [(inputs[0], "input", in_shape)] + [(k, k, p.shape) for k, p in pops.items()]

    def fix(delays: list, m: np.ndarray) -> list:
        """Matrix ``m`` follows per-element delays: each output must see one delay to stay expressible."""
        out = []
        for where, d, name in delays:
            if where != "post":
                out.append((where, d, name))
                continue
            rows = []
            for j in range(m.shape[0]):
                seen = np.unique(d[np.flatnonzero(m[j])])
                if len(seen) > 1:
                    raise GraphError(f"node {name!r}: an output of the next linear node mixes inputs with different "
                                     "delays; that cannot be expressed as synaptic delays")
                rows.append(seen[0] if len(seen) else 0.0)
            out.append(("post", np.asarray(rows), name))
        return out

    def walk(start: str, src: str, shape, mat, bias_terms, delays, path):
        """Depth-first along linear nodes; a projection ends at a population, an Output ends a readout."""
        for nxt in succ[start]:
            node = nodes[nxt]
            if nxt in path:
                raise GraphError(f"node {nxt!r}: a cycle through linear nodes only (no neuron on it)")
            if nxt in pops:
                tgt = pops[nxt]
                if int(np.prod(shape)) != tgt.size:
                    raise GraphError(f"edge {start!r} -> {nxt!r}: {int(np.prod(shape))} values into "
                                     f"{tgt.size} neurons")
                n_src = pops[src].size if src in pops else int(np.prod(in_shape))
                projections.append(_projection(src, nxt, path, mat, delays, dt, n_src))
                for bname, bvec, bdel in bias_terms:
                    projections.append(_projection("bias", nxt, path + [f"bias of {bname}"], bvec.reshape(-1, 1),
                                                   bdel, dt, 1))
            elif isinstance(node, (nir.Input, nir.Output)) and succ[nxt]:     # a subgraph's border
                walk(nxt, src, shape, mat, bias_terms, delays, path + [nxt])
            elif isinstance(node, nir.Output):
                if src == "input" or mat is not None or bias_terms:
                    raise GraphError(f"node {nxt!r}: fed by a linear path from {src!r} with no neuron at its end; "
                                     "Lava computes outputs in neurons (end the graph with a neuron node)")
                readout.append(src)
            elif isinstance(node, LINEAR):
                m, b, out_shape, d = linear_op(nxt, node, shape)
                new, new_delays = mat, list(delays)
                terms = list(bias_terms)
                if m is not None:
                    new = m if mat is None else m @ mat
                    new_delays = fix(new_delays, m)
                    terms = [(bn, m @ bv, fix(bd, m)) for bn, bv, bd in terms]
                if d is not None:
                    new_delays.append(("pre" if new is None else "post", d, nxt))
                    terms = [(bn, bv, bd + [("post", d, nxt)]) for bn, bv, bd in terms]
                if b is not None and np.any(b):
                    terms.append((nxt, b, []))
                walk(nxt, src, out_shape, new, terms, new_delays, path + [nxt])
            else:  # pragma: no cover
                raise GraphError(f"node {nxt!r}: unexpected type {type(node).__name__}")

    for start, src, shape0 in sources:
        walk(start, src, shape0, None, [], [], [])
    if not projections:
        raise GraphError("graph has no neuron node fed from its input")
    _quantise(pops, gains, projections, limits, notes)
    order, frontier = [], ["input"]          # populations in order of distance from the input
    while frontier:
        nxt = [p.target for p in projections if p.source in frontier and p.target not in order]
        order += list(dict.fromkeys(nxt))
        frontier = list(dict.fromkeys(nxt))
    for k in pops:
        if k not in order:
            raise GraphError(f"node {k!r}: no path from the input reaches it")
    pops = {k: pops[k] for k in order}
    return Net(in_shape, pops, projections, readout or [order[-1]], dt, method, source, notes)


def _projection(src: str, tgt: str, path: list[str], mat, delays, dt: float, n_src: int) -> Projection:
    w = np.eye(n_src) if mat is None else np.asarray(mat, dtype=np.float64)
    D = np.ones(w.shape, dtype=np.int64)
    for where, d, name in delays:
        steps = np.rint(d / dt).astype(np.int64)
        if np.any(np.abs(steps * dt - d) > 1e-6 * max(1.0, float(np.abs(d).max()))):
            raise GraphError(f"node {name!r}: delay {d.max():g} s is not a whole number of steps of dt {dt:g}")
        if where == "pre":
            D = D + steps[None, :]
        else:
            D = D + steps[:, None]
    return Projection(src, tgt, list(path), w, D)


def _int_range(x: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, round(x))))


def _quantise(pops: dict, gains: dict, projections: list[Projection], limits: Limits, notes: list[str]) -> None:
    """Integer parameters for every population and projection (in place)."""
    for name, pop in pops.items():
        incoming = [p for p in projections if p.target == name]
        g = gains[name]
        if not pop.spiking:
            # no threshold to scale by: put the largest input at a full 8-bit mantissa with exponent 6
            peak = max((float(np.abs(g[:, None] * p.w).max()) for p in incoming), default=0.0)
            pop.scale = np.full(pop.size, 127.0 * 64 / peak if peak > 0 else 1.0)
        vth = VTH
        with np.errstate(over="ignore", invalid="ignore"):
            need = max((float(np.abs(pop.scale[:, None] * g[:, None] * p.w).max()) / 64 for p in incoming),
                       default=0.0)
        if need > 0 and math.log2(need / 127) > limits.weight_exp_max:
            shrink = 2 ** math.ceil(math.log2(need / 127) - limits.weight_exp_max) if math.isfinite(need) else math.inf
            if shrink > vth:
                raise GraphError(f"node {name!r}: its input weights are up to {need * 64 / (VTH * 64):.3g} times "
                                 f"its threshold; Loihi 2's 8-bit weights with exponent <= {limits.weight_exp_max} "
                                 "cannot reach that even with threshold mantissa 1")
            vth, pop.scale = max(1, vth // shrink), pop.scale / shrink
            notes.append(f"{name}: threshold mantissa lowered to {vth} so that its weights fit exponent "
                         f"{limits.weight_exp_max}")
        pop.vth = vth if pop.spiking else limits.vth_max
        if pop.spiking:
            pop.theta = pop.scale * pop.theta
        pop.du = _int_range(4095 - 4096 * pop.alpha, 0, limits.decay_max)
        pop.dv = _int_range(4096 - 4096 * pop.beta, 0, limits.decay_max)
        pop.bias_f = pop.scale * pop.bias_f
        pop.v0_f = pop.scale * pop.v0_f
        lo, hi = limits.bias_mant_min << limits.bias_exp_max, limits.bias_mant_max << limits.bias_exp_max
        if np.any((pop.bias_f < lo) | (pop.bias_f > hi)):
            notes.append(f"{name}: bias clipped to Loihi 2's range [{lo}, {hi}] (the error table shows by how much)")
        b = np.rint(np.clip(pop.bias_f, lo, hi)).astype(np.int64)
        e = np.zeros_like(b)
        big = np.abs(b) > limits.bias_mant_max
        e[big] = np.minimum(limits.bias_exp_max,
                            np.ceil(np.log2(np.abs(b[big]) / limits.bias_mant_max)).astype(np.int64))
        pop.bias_mant = np.clip(np.rint(np.clip(pop.bias_f, lo, hi) / 2.0**e), limits.bias_mant_min,
                                limits.bias_mant_max).astype(np.int64)
        pop.bias_exp = e
        top = 2 ** (limits.state_bits - 1) - 1
        pop.v0 = np.clip(np.rint(pop.v0_f), -top, top).astype(np.int64)
        for p in incoming:
            p.w = (pop.scale * g)[:, None] * p.w / 64.0
            peak = float(np.abs(p.w).max())
            e = 0 if peak == 0 else math.ceil(math.log2(peak / limits.weight_max))
            p.exp = int(min(limits.weight_exp_max, max(limits.weight_exp_min, e)))
            p.q = np.clip(np.rint(p.w / 2.0**p.exp), limits.weight_min, limits.weight_max).astype(np.int64)
            if int(p.delay.max()) - 1 > limits.delay_max:
                raise GraphError(f"projection {p.name}: delay {int(p.delay.max())} steps exceeds Loihi 2's "
                                 f"{limits.delay_max + 1}")


def error_table(net: Net) -> list[dict]:
    """Per population: how far the integers are from the discretised float graph."""
    rows = []
    for name, pop in net.populations.items():
        incoming = [p for p in net.projections if p.target == name]
        num = sum(float(np.sum((p.q * 2.0**p.exp - p.w) ** 2)) for p in incoming)
        den = sum(float(np.sum(p.w ** 2)) for p in incoming)
        keep_u, keep_v = (4095 - pop.du) / 4096, (4096 - pop.dv) / 4096
        thr = float(np.max(np.abs(pop.vth * 64 - pop.theta) / pop.theta)) if pop.spiking else 0.0
        rows.append({"layer": name, "type": pop.kind, "neurons": pop.size, "projections": len(incoming),
                     "weight_exp": ",".join(str(p.exp) for p in incoming),
                     "weight_rel_rms_error": math.sqrt(num / den) if den else 0.0,
                     "du": pop.du, "dv": pop.dv, "current_decay_error": abs(keep_u - pop.alpha),
                     "voltage_decay_error": abs(keep_v - pop.beta), "vth": pop.vth,
                     "threshold_rel_error": thr,
                     "bias_max_abs_error_lsb": float(np.max(np.abs(pop.bias - pop.bias_f))) if pop.size else 0.0})
    return rows
