"""A graph of ours, read exactly from its integer metadata (``export/nir_export.py`` writes it): weight mantissas
and exponents, du, dv, vth, bias, delays, steps; no re-quantisation. Any other graph: ``hardware/graph/read.py``.
"""
from __future__ import annotations

import math

import nir
import numpy as np

from hardware.errors import GraphError
from hardware.graph.discretise import NEURONS
from hardware.graph.ir import Conv, Dense, Network, Neurons, Projection
from hardware.graph.linear_ops import linear_op
from hardware.graph.read import MAX_DELAY, MAX_STEPS, _flat_nodes, _order, _Paths


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


def _check_lines(lines, syn, delay, dt: float) -> None:
    """``Delay`` nodes before a synapse of ours say its per-input delays, which its metadata holds exactly: they
    must agree (a graph edited on one side only is refused)."""
    if not lines:
        return
    steps = np.sum([op.delay for op in lines], axis=0) / dt if dt > 0 else np.array([np.nan])
    want = np.broadcast_to(np.asarray(delay), syn.weight.shape[:2])
    if isinstance(syn, Conv) or steps.shape != want.shape[1:] or \
            not np.array_equal(np.rint(steps).astype(np.int64) + 1, want[0]) or np.any(want != want[:1]):
        raise GraphError(f"node {lines[0].name!r}: its Delay of {float(np.max(steps)):g} steps does not match the "
                         "integer metadata 'delay' of the weights after it")


def read_exact(g: nir.NIRGraph) -> Network:
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
        if len([op for op in syn_ops if op.delay is None]) != 1 or syn_ops[-1].delay is not None \
                or syn_ops[-1].bias is not None:
            raise GraphError(f"path {src!r} -> {tgt!r}: a graph with our contract has one Linear or Conv2d node "
                             "(no bias, Delay nodes only before it) between two neuron nodes")
        node = nodes[syn_ops[-1].name]
        syn = _exact_synapse(syn_ops[-1].name, node, syn_ops[-1].in_shape)
        delay = _delay(node, syn_ops[-1].name)
        _check_lines(syn_ops[:-1], syn, delay, float((g.metadata or {}).get("dt", 0)))
        projections.append(Projection(rename[src], rename[tgt], syn, delay, tuple(op.name for op in ops)))
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
