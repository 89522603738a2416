"""NIR graph -> :class:`hardware.graph.ir.Network`, the one representation every backend runs.

Two readings of the same node types:

- **exact**: a graph carrying our integer contract (``export/nir_export.py``: graph metadata ``contract``) is read
  from its integer metadata, with no re-quantisation: weight mantissas and exponents, du, dv, vth, bias.
- **discretised and quantised**: any other graph (snnTorch, Norse, Sinabs, Rockpool, nirtorch, ...) is read from
  its continuous-time fields under a stated convention (``hardware/graph/discretise.py``), its linear paths are
  composed into synapses (``hardware/graph/linear_ops.py``: convolutions stay convolutions where exact), and it is
  quantised to Loihi 2's integers (``hardware/graph/quantise.py``), with the float model kept beside it.

Linear nodes between two neuron nodes (Affine, Linear, Conv, pooling, Scale, Flatten, Delay) become one projection
per path; nested subgraphs (a CubaLIF with a recurrent Affine) are inlined; biases of Affine and Conv nodes become
a projection from an always-on source.
"""
from __future__ import annotations

import math
from pathlib import Path

import nir
import numpy as np

from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph import nir_checks
from hardware.graph.discretise import METHODS, NEURONS, PRESETS, population
from hardware.graph.ir import CONTRACT, Conv, Dense, Network, Neurons, Projection
from hardware.graph.linear_ops import LINEAR, Op, compose, linear_op
from hardware.graph.quantise import quantise


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


class _Paths:
    """Every path of linear nodes from a source (the input or a neuron node) to a neuron node, and the neuron
    nodes that feed an Output."""

    def __init__(self, nodes: dict, edges: list, neurons: set[str]):
        self.nodes, self.neurons = nodes, neurons
        supported = LINEAR + NEURONS + (nir.Input, nir.Output)
        for k, node in nodes.items():
            if not isinstance(node, supported):
                raise GraphError(f"node {k!r}: type {type(node).__name__} is not supported (supported: "
                                 f"{', '.join(sorted(c.__name__ for c in supported))})")
        inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input) and "." not in k]
        if len(inputs) != 1:
            raise GraphError(f"graph has {len(inputs)} top-level Input nodes; expected exactly one")
        self.input = inputs[0]
        self.succ: dict[str, list[str]] = {k: [] for k in nodes}
        for a, b in edges:
            if a not in nodes or b not in nodes:
                raise GraphError(f"edge ({a!r}, {b!r}) refers to an unknown node")
            self.succ[a].append(b)
        self.input_shape = tuple(int(s) for s in np.asarray(nodes[self.input].input_type["input"]).ravel())
        self.found: list[tuple[str, str, list[Op]]] = []       # (source, target, ops)
        self.readout: list[str] = []

    def walk(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self._walk(self.input, "input", self.input_shape, [], [])
        for k in self.neurons:
            self._walk(k, k, shapes[k], [], [])

    def _walk(self, start: str, src: str, shape, ops: list[Op], seen: list[str]) -> None:
        for nxt in self.succ[start]:
            node = self.nodes[nxt]
            if nxt in seen:
                raise GraphError(f"node {nxt!r}: a cycle through linear nodes only (no neuron on it)")
            if nxt in self.neurons:
                self.found.append((src, nxt, ops))
            elif isinstance(node, (nir.Input, nir.Output)) and self.succ[nxt]:     # a subgraph's border
                self._walk(nxt, src, shape, ops, seen + [nxt])
            elif isinstance(node, nir.Output):
                if src == "input" or ops:
                    raise GraphError(f"node {nxt!r}: fed by a linear path from {src!r} with no neuron at its end; "
                                     "Lava computes outputs in neurons (end the graph with a neuron node)")
                self.readout.append(src)
            else:
                op = linear_op(nxt, node, shape)
                self._walk(nxt, src, op.out_shape, ops + [op], seen + [nxt])


def _order(projections, names) -> list[str]:
    """Populations in order of distance from the input; every one must be reached."""
    order, frontier = [], ["input"]
    while frontier:
        nxt = [p.target for p in projections if p.source in frontier and p.target not in order]
        order += list(dict.fromkeys(nxt))
        frontier = list(dict.fromkeys(nxt))
    for k in names:
        if k not in order:
            raise GraphError(f"node {k!r}: no path from the input reaches it")
    return order


MAX_DELAY = Limits().delay_max + 1         # steps, the synapse's own one included (hardware/chip/loihi2.py)
MAX_STEPS = 100_000     # steps per sample a file may declare: a guard against untrusted sizes, not the chip's
                        # bound (hardware/chip/loihi2.py Limits.max_steps, checked where a network is judged)


def _steps(name: str, d, dt: float):
    with np.errstate(over="ignore", invalid="ignore"):
        ratio = np.asarray(d, dtype=np.float64) / dt
    if np.any(ratio > MAX_DELAY):
        raise GraphError(f"{name}: delay {float(np.max(d)):g} s is {float(np.max(ratio)):.3g} steps of dt {dt:g}; "
                         f"Loihi 2 delays a spike by at most {MAX_DELAY} steps")
    steps = np.rint(ratio).astype(np.int64)
    if np.any(np.abs(steps * dt - np.asarray(d)) > 1e-6 * max(1.0, float(np.abs(np.asarray(d)).max(initial=0)))):
        raise GraphError(f"{name}: delay {float(np.max(d)):g} s is not a whole number of steps of dt {dt:g}")
    return 1 + (int(steps) if steps.ndim == 0 else steps)


def load(graph: nir.NIRGraph | str | Path, dt: float | None = None, method: str | None = None,
         source: str = "nir", limits: Limits = Limits(), exact: bool | None = None) -> Network:
    """Read a NIR graph: exactly from our integer metadata when it has our contract (``exact=None`` or True),
    else discretised (``dt``, ``method``, ``source`` preset) and quantised to ``limits``."""
    g = graph if isinstance(graph, nir.NIRGraph) else nir_checks.read(graph)
    if dt is not None and not (math.isfinite(dt) and dt > 0):
        raise GraphError(f"--dt {dt:g} is not a time step: give a positive, finite number of seconds")
    nir_checks.validate(g)
    ours = (g.metadata or {}).get("contract") == CONTRACT
    if exact and not ours:
        raise GraphError("graph metadata has no integer contract (it was not written by export/nir_export.py)")
    if ours and exact is not False and dt is None and method is None:
        return _exact(g)
    return _quantised(g, dt, method, source, limits)


def _quantised(g: nir.NIRGraph, dt, method, source: str, limits: Limits) -> Network:
    if source not in PRESETS:
        raise GraphError(f"unknown source convention {source!r}; choose one of {sorted(PRESETS)}")
    preset = PRESETS[source]
    method = method or preset["method"]
    if method not in METHODS:
        raise GraphError(f"unknown discretisation {method!r}; choose one of {list(METHODS)}")
    md = g.metadata or {}
    notes: list[str] = []
    if dt is None and "dt" in md and preset["dt"] is not None and float(md["dt"]) != preset["dt"]:
        notes.append(f"dt = {float(md['dt']):g} s from the graph's metadata, not the {source} preset's "
                     f"{preset['dt']:g} (give --dt to choose)")
    dt = dt if dt is not None else (float(md["dt"]) if "dt" in md else preset["dt"])
    if dt is None:
        raise GraphError("NIR stores no time step and the graph's metadata has no 'dt': give --dt (seconds)")
    nodes, edges = _flat_nodes(g)
    pops = {k: population(k, node, dt, method, preset) for k, node in nodes.items() if isinstance(node, NEURONS)}
    lag = {k: preset.get("current_lag", 0) if isinstance(node, (nir.CubaLIF, nir.CubaLI)) else 0
           for k, node in nodes.items()}
    paths = _Paths(nodes, edges, set(pops))
    paths.walk({k: p.shape for k, p in pops.items()})
    projections = []
    for src, tgt, ops in paths.found:
        n_src = pops[src].size if src in pops else math.prod(paths.input_shape)
        n_out = ops[-1].out_shape if ops else ((n_src,) if src == "input" else pops[src].shape)
        if math.prod(n_out) != pops[tgt].size:
            raise GraphError(f"path {src!r} -> {tgt!r}: {math.prod(n_out)} values into {pops[tgt].size} neurons")
        syn = compose(ops, n_src)
        names = tuple(op.name for op in ops)
        projections.append(Projection(src, tgt, syn.synapse,
                                      _steps(f"path {src!r} -> {tgt!r}", syn.delay, dt) + lag[tgt], names))
        for k, (b, d) in enumerate(syn.biases):
            projections.append(Projection("bias", tgt, Dense(b.reshape(-1, 1), 0),
                                          _steps(f"path {src!r} -> {tgt!r}", d, dt) + lag[tgt], names + (f"bias {k}",)))
    if not projections:
        raise GraphError("graph has no neuron node fed from its input")
    order = _order(projections, pops)
    pops = {k: pops[k] for k in order}
    projections.sort(key=lambda p: order.index(p.target))        # stable: in order of the populations they feed
    ints, projections, fm = quantise(pops, projections, limits, notes)
    return Network(paths.input_shape, ints, projections, tuple(paths.readout or [order[-1]]), dt,
                   exact=False, method=method, source=source, float_model=fm, notes=tuple(notes))


def _whole(name: str, key: str, value) -> np.ndarray:
    """Integer metadata as int64, or a GraphError naming the node and key."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        a = np.array([np.nan])
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or np.any(np.abs(a) > 2**62):
        raise GraphError(f"node {name!r}: integer metadata {key} is not whole numbers")
    return a.astype(np.int64)


def _meta_int(node, name: str, key: str, default=None) -> int:
    md = node.metadata or {}
    if key not in md:
        if default is not None:
            return default
        raise GraphError(f"node {name!r} ({type(node).__name__}): missing integer metadata {key!r}")
    return int(_whole(name, key, md[key]).ravel()[0])


def _exact_synapse(name: str, node, in_shape) -> Dense | Conv:
    md = node.metadata or {}
    if "weight_mantissa" not in md:
        raise GraphError(f"node {name!r} ({type(node).__name__}): missing integer metadata 'weight_mantissa'")
    q = _whole(name, "weight_mantissa", md["weight_mantissa"])
    exp = _meta_int(node, name, "weight_exp")
    op = linear_op(name, node, in_shape)
    if op.conv is not None:
        return Conv(q, exp, op.conv.in_shape, op.conv.stride, op.conv.padding, op.conv.dilation, op.conv.groups,
                    str(md.get("pool", op.conv.pool)))
    return Dense(q, exp)


def _meta_each(node, name: str, key: str, size: int, default: int = 0) -> np.ndarray:
    """Per-neuron integer metadata, stored as one number or as an array of ``size``."""
    md = node.metadata or {}
    a = _whole(name, key, md[key]).ravel() if key in md else np.array([default], np.int64)
    if a.size not in (1, size):
        raise GraphError(f"node {name!r}: integer metadata {key} has {a.size} values for {size} neurons")
    return np.broadcast_to(a, (size,)).copy()


def _delay(node, name: str, key: str = "delay"):
    """Delay in steps (>= 1): one number, or per synapse (an array)."""
    d = _whole(name, key, (node.metadata or {}).get(key, 1))
    if np.any(d < 1) or np.any(d > MAX_DELAY):
        raise GraphError(f"node {name!r}: integer metadata {key} holds delays of {int(d.min())}..{int(d.max())} "
                         f"steps; a delay is 1..{MAX_DELAY} steps (Loihi 2's limit, the synapse's own step included)")
    return int(d.ravel()[0]) if d.ndim == 0 or np.all(d == d.ravel()[0]) else d


def _exact(g: nir.NIRGraph) -> Network:
    """Our own graph: every path is flattens around one synapse node with integer metadata."""
    nodes, edges = _flat_nodes(g)
    cuba = {k: n for k, n in nodes.items() if isinstance(n, NEURONS)}
    for k, n in cuba.items():
        if not isinstance(n, nir.CubaLIF) or "du" not in (n.metadata or {}):
            raise GraphError(f"node {k!r} ({type(n).__name__}): a graph with our contract has CubaLIF nodes with "
                             "integer metadata only")
    shapes = {k: tuple(int(s) for s in np.shape(n.v_threshold)) or (1,) for k, n in cuba.items()}
    paths = _Paths(nodes, edges, set(cuba))
    paths.walk(shapes)
    rename = {k: str((n.metadata or {}).get("layer", k)) for k, n in cuba.items()}
    seen: dict[str, str] = {}
    for k, layer in rename.items():
        if layer in seen or layer in ("input", "bias"):
            raise GraphError(f"nodes {seen.get(layer, 'input')!r} and {k!r} both name layer {layer!r} in their "
                             "metadata; every layer of our contract has its own name")
        seen[layer] = k
    rename["input"] = "input"
    projections = []
    for src, tgt, ops in paths.found:
        syn_ops = [op for op in ops if op.linear or op.delay is not None]
        if len(syn_ops) != 1 or syn_ops[0].bias is not None:
            raise GraphError(f"path {src!r} -> {tgt!r}: a graph with our contract has one Linear or Conv2d node "
                             "(no bias) between two neuron nodes")
        node = nodes[syn_ops[0].name]
        syn = _exact_synapse(syn_ops[0].name, node, syn_ops[0].in_shape)
        projections.append(Projection(rename[src], rename[tgt], syn, _delay(node, syn_ops[0].name),
                                      tuple(op.name for op in ops)))
    pops = {}
    for k, n in cuba.items():
        size = math.prod(shapes[k])
        md = lambda key, default=None: _meta_int(n, k, key, default)  # noqa: E731
        meta = n.metadata or {}
        pops[rename[k]] = Neurons(rename[k], shapes[k], md("du"), md("dv"), md("vth"),
                                  _meta_each(n, k, "bias_mant", size), _meta_each(n, k, "bias_exp", size),
                                  _meta_each(n, k, "v0", size), bool(np.asarray(meta.get("spiking", True))),
                                  str(meta.get("kind", "CubaLIF")))
        for j in range(md("bias_inputs", 0)):       # the always-on bias source (export/nir_export.from_network)
            q = _whole(k, f"bias_in{j}_mantissa", meta.get(f"bias_in{j}_mantissa", np.nan)).reshape(size, -1)
            projections.append(Projection("bias", rename[k], Dense(q, md(f"bias_in{j}_exp")),
                                          _delay(n, k, f"bias_in{j}_delay"), (k, f"bias {j}")))
    order = _order(projections, pops)
    projections.sort(key=lambda p: order.index(p.target))
    gm = g.metadata or {}
    for key in ("n_bins", "n_steps", "dt"):
        if key not in gm:
            raise GraphError(f"graph metadata lacks {key!r}")
    n_bins, n_steps = (int(_whole("graph", k, gm[k]).ravel()[0]) for k in ("n_bins", "n_steps"))
    if not 1 <= n_bins <= n_steps <= MAX_STEPS:
        raise GraphError(f"graph metadata: n_bins {n_bins} and n_steps {n_steps} must satisfy 1 <= n_bins <= n_steps "
                         f"<= {MAX_STEPS:,}")
    return Network(paths.input_shape, {k: pops[k] for k in order}, tuple(projections),
                   tuple(rename[k] for k in paths.readout) or (order[-1],), float(gm["dt"]), n_bins, n_steps)
