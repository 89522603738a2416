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
from hardware.graph.compose import compose
from hardware.graph.discretise import METHODS, NEURONS, PRESETS, population
from hardware.graph.ir import CONTRACT, Dense, Network, Projection
from hardware.graph.linear_ops import LINEAR, Op, linear_op
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
        from hardware.graph.exact import read_exact     # imported here: it uses this module's path helpers
        return read_exact(g)
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
