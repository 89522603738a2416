"""NIR graph -> the integer layer chain that every backend in ``hardware/`` runs.

``hardware/`` never sees a torch module: networks arrive as NIR graphs, here or in ``foreign.py``. A graph
must carry the integer contract in its metadata (``export/nir_export.py`` writes it); graphs without it are
refused with the node that lacks it. Graphs from other frameworks go through ``hardware/foreign.py``
(``pipeline verify``): a stated discretisation and quantisation, with its error measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np


class GraphError(ValueError):
    """A NIR graph this backend cannot run, naming the node and the reason."""


@dataclass(frozen=True)
class Layer:
    name: str
    weight: np.ndarray        # (out, in) int64 mantissas
    weight_exp: int
    du: int
    dv: int
    vth: int
    bias: int                 # effective bias, bias_mant << bias_exp


@dataclass(frozen=True)
class Chain:
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    n_bins: int
    n_steps: int
    dt: float


def _meta(node, name: str, key: str):
    md = node.metadata or {}
    if key not in md:
        raise GraphError(f"node {name!r} ({type(node).__name__}): missing integer metadata {key!r}")
    return md[key]


def _successor(edges: list[tuple[str, str]], name: str) -> str | None:
    nxt = [b for a, b in edges if a == name]
    if len(nxt) > 1:
        raise GraphError(f"node {name!r} fans out to {nxt}; only feed-forward chains are supported")
    return nxt[0] if nxt else None


def load_chain(graph: nir.NIRGraph | str | Path) -> Chain:
    """Read the layer chain input -> [flatten] -> (Linear|Affine -> CubaLIF)* -> output."""
    if not isinstance(graph, nir.NIRGraph):
        from hardware import nir_checks          # (it imports GraphError from here)
        graph = nir_checks.read(graph)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        raise GraphError(f"graph has {len(inputs)} Input nodes; expected exactly one")
    name, layers, pending = _successor(graph.edges, inputs[0]), [], None
    while name is not None:
        node = graph.nodes[name]
        if isinstance(node, (nir.Linear, nir.Affine)):
            if getattr(node, "bias", None) is not None and np.any(node.bias):
                raise GraphError(f"node {name!r}: Affine bias is not supported; put bias in the neuron")
            pending = (name, node)
        elif isinstance(node, nir.CubaLIF):
            if pending is None:
                raise GraphError(f"node {name!r}: CubaLIF without a preceding Linear/Affine")
            wname, wnode = pending
            md = lambda key: int(_meta(node, name, key))  # noqa: E731
            layers.append(Layer(wname, np.asarray(_meta(wnode, wname, "weight_mantissa"), dtype=np.int64),
                                int(_meta(wnode, wname, "weight_exp")), md("du"), md("dv"), md("vth"),
                                md("bias_mant") << md("bias_exp")))
            pending = None
        elif not isinstance(node, (nir.Flatten, nir.Output)):
            raise GraphError(f"node {name!r}: type {type(node).__name__} is not supported by this backend")
        name = _successor(graph.edges, name)
    if not layers:
        raise GraphError("graph has no Linear -> CubaLIF layer")
    gmeta = graph.metadata or {}
    for key in ("n_bins", "n_steps", "dt"):
        if key not in gmeta:
            raise GraphError(f"graph metadata lacks {key!r}")
    shape = tuple(int(s) for s in graph.nodes[inputs[0]].input_type["input"])
    return Chain(shape, tuple(layers), int(gmeta["n_bins"]), int(gmeta["n_steps"]), float(gmeta["dt"]))


def input_spikes(chain: Chain, frames: np.ndarray) -> np.ndarray:
    """Frames (B, T, ...) -> binary input spikes (B, n_steps, inputs), zero after the T bins."""
    B, T = frames.shape[:2]
    if T != chain.n_bins:
        raise GraphError(f"input has {T} time bins; the graph was built for {chain.n_bins}")
    x = np.zeros((B, chain.n_steps, int(np.prod(chain.input_shape))), dtype=np.int64)
    x[:, :T] = frames.reshape(B, T, -1) > 0
    return x
