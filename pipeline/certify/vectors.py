"""Test vectors in NIR's own data format (``vectors.h5``): input spikes and every layer's expected spikes.

Written with nir 1.0.8's ``nir.write_data`` as a ``NIRGraphData`` of ``NIRNodeData`` of ``TimeGriddedData``:
node ``input`` and the name of each neuron node of ``model.nir``, observable ``spikes``, bool (samples, steps,
neurons) at the graph's dt; a non-spiking readout also has its integer voltage ``v``. Each sample's steps are
followed by ``tail`` steps with no input (the model run on past the sample's end: what batched Lava computes
there before each layer's reset), so that a replay can compare every step a backend computes. Anyone with the
nir package reads them with ``nir.read_data``.

:func:`read` reads a received file defensively: no links or external storage (``hardware/h5safe.py``), every
dataset's shape and type checked against what the certificate and ``model.nir`` declare before it is read,
spikes that are booleans, an input that is empty past each sample's end.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np

from export.files import atomic_write
from hardware import h5safe
from hardware.errors import GraphError
from hardware.graph.ir import Network
from hardware.judge.trace import Trace

VECTORS = "vectors.h5"


def node_names(graph: nir.NIRGraph, prefix: str = "") -> dict[str, str]:
    """Layer (population) name -> the name of its neuron node in ``graph`` (our graphs name the layer in each
    CubaLIF node's metadata); a node inside a subgraph (a recurrent layer) is named ``subgraph.node``."""
    out = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            out.update(node_names(node, f"{prefix}{name}."))
        elif isinstance(node, nir.CubaLIF):
            out[str((node.metadata or {}).get("layer", name))] = prefix + name
    return out


def choose(samples: int, wanted: int, diverged: list[int]) -> np.ndarray:
    """Which samples to store: the first ``wanted``, and up to ``wanted`` more of the diverged ones (a
    DIVERGED certificate must carry a divergence that recheck reproduces), in sample order."""
    first = list(range(min(wanted, samples)))
    extra = [i for i in sorted(set(diverged)) if i >= len(first)][:wanted]
    return np.array(sorted(first + extra), np.int64)


def write(path: Path, graph: nir.NIRGraph, net: Network, x: np.ndarray, expected: Trace) -> None:
    """Input spikes ``x`` (B, steps, inputs) padded with no input to the expected trace's steps, and every layer's
    expected spikes (and a non-spiking readout's voltage)."""
    names = node_names(graph)
    steps = next(iter(expected.spikes.values())).shape[1]
    xs = np.zeros((x.shape[0], steps, x.shape[2]), bool)
    xs[:, :x.shape[1]] = x
    nodes = {"input": nir.NIRNodeData({"spikes": nir.TimeGriddedData(xs, net.dt)})}
    for k in net.populations:
        obs = {"spikes": nir.TimeGriddedData(np.asarray(expected.spikes[k], bool), net.dt)}
        if k in expected.voltage:
            obs["v"] = nir.TimeGriddedData(np.asarray(expected.voltage[k], np.int64), net.dt)
        nodes[names[k]] = nir.NIRNodeData(obs)
    atomic_write(path, lambda p: nir.write_data(p, nir.NIRGraphData(nodes)))


@dataclass(frozen=True)
class Vectors:
    x: np.ndarray           # (B, sample_steps, inputs) int64: each sample's own input steps
    expected: Trace         # (B, sample_steps + tail, N) per population
    tail: int


def read(path: Path, graph: nir.NIRGraph, net: Network, samples: int, sample_steps: int, tail: int) -> Vectors:
    """The vectors in ``path``, checked against what the certificate declares (``samples``, ``sample_steps`` and
    ``tail`` steps per sample) and against ``net`` (nodes, neurons, a voltage for each non-spiking readout);
    anything else is a :class:`GraphError` naming the file, the node and what was found."""
    h5safe.check(path)
    names = node_names(graph)
    steps = sample_steps + tail
    want = {"input": ("spikes", net.input_size)}
    want.update({names[k]: ("spikes", pop.size) for k, pop in net.populations.items()})
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("__type__") != "NIRGraphData" or "nodes" not in f:
                raise GraphError(f"{path.name}: not NIR graph data (nir.write_data's layout)")
            nodes = f["nodes"]
            if set(nodes) != set(want):
                raise GraphError(f"{path.name}: holds nodes {sorted(nodes)}; model.nir's input and neuron nodes "
                                 f"are {sorted(want)}")

            def grid(node: str, obs: str, size: int, dtype) -> np.ndarray:
                g = nodes[node].get("observables", {}).get(obs)
                d = g.get("data") if isinstance(g, h5py.Group) else None
                if not isinstance(d, h5py.Dataset):
                    raise GraphError(f"{path.name}: no {obs!r} data for node {node!r}")
                if d.shape != (samples, steps, size):
                    raise GraphError(f"{path.name}: node {node!r} {obs} has shape {d.shape}; the certificate and "
                                     f"model.nir declare ({samples}, {steps}, {size}) (samples, steps of "
                                     f"{sample_steps} + {tail} past each sample's end, neurons)")
                if d.dtype != dtype:
                    raise GraphError(f"{path.name}: node {node!r} {obs} holds {d.dtype} values; expected "
                                     f"{np.dtype(dtype)}" + (" (spikes are booleans)" if dtype is bool else ""))
                return d[()]

            x = grid("input", "spikes", net.input_size, bool)
            spikes, volt = {}, {}
            for k, pop in net.populations.items():
                spikes[k] = grid(names[k], "spikes", pop.size, bool)
                if not pop.spiking:
                    volt[k] = grid(names[k], "v", pop.size, np.int64)
    except GraphError:
        raise
    except Exception as e:          # h5py raises many types on a damaged file
        raise GraphError(f"{path.name}: not readable as NIR data ({type(e).__name__}: "
                         f"{' '.join(str(e).split())})") from None
    if x[:, sample_steps:].any():
        raise GraphError(f"{path.name}: the input has spikes past each sample's {sample_steps} steps, where the "
                         "stored tail must have none")
    return Vectors(x[:, :sample_steps].astype(np.int64), Trace(spikes, volt), tail)
