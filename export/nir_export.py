"""The hardware network (``hardware/graph/ir.py``) -> NIR 1.0 graph, written on the nir API: the one NIR writer.

Every graph this tool writes comes from a hardware network through :func:`_write`: a trained model's
(:func:`to_nir` makes its network with :func:`network` first) and any graph ``verify`` read and quantised
(:func:`from_network`); a :class:`Layout` says only how nodes are named and whether a recurrent layer is written
as the NIR paper writes one. snnTorch 1.0's ``export_to_nir`` fails with nir 1.0.8 and does not keep reset
semantics, so we write the nodes ourselves. Each layer is ``Linear`` or ``Conv2d`` (weights ``q * 2**e``; a
``Flatten`` before a dense layer fed by a convolution) followed by ``CubaLIF`` (a trained recurrent layer: a
subgraph ``rnnK`` of the ``CubaLIF`` and its recurrent ``Linear``) with continuous-time parameters a third-party
reader can use, under the exponential (zero-order-hold) discretisation with step ``dt``:

    I[t] = a I[t-1] + (1 - a) w_in x[t],   a = exp(-dt / tau_syn)   ->  w_in = 64 / (1 - a)
    v[t] = b v[t-1] + (1 - b) r I[t],      b = exp(-dt / tau_mem)   ->  r = 1 / (1 - b)
    spike when v > v_threshold (= vth * 64), then v = v_reset = 0

The exact integer contract (weight mantissas and exponents, du, dv, vth, bias, truncation, reset rule, one-step
delay per layer, dt, number of steps) is in node and graph metadata, so nothing is lost for hardware.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np

from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph.ir import CONTRACT, Conv, Dense, Network, Neurons, Projection
from models.neuron import STATE_SHIFT
from models.snn import DeployedNet


WEIGHT_BITS = Limits().weight_max.bit_length() + 1     # signed weight mantissas: 8 bits on Loihi 2
# what every population's metadata states of the neuron it runs on (the state width is the chip's)
_NEURON_CONTRACT = {"reset": "zero", "refractory": 0, "state_bits": Limits().state_bits, "spike_rule": "v > vth << 6",
                    "decay_rounding": "truncate toward zero"}


def leak(bias, r: float):
    """The continuous v_leak that gives a per-step bias under the exponential discretisation,
    v[t] = b v[t-1] + (1 - b) (v_leak + r I): v_leak = bias r. Without a leak (r = inf) no v_leak can give a bias;
    then v_leak is 0 and the bias lives in the integer metadata alone."""
    return np.asarray(bias, dtype=np.float64) * r if np.isfinite(r) else np.zeros(np.shape(bias))


def _fill(values: np.ndarray, shape) -> np.ndarray:
    """One value per neuron in the node's shape: a flat per-neuron array reshaped (C-major), or one broadcast."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(shape) if values.size == np.prod(shape) and values.size > 1 else \
        np.full(shape, float(values.ravel()[0]) if values.size else 0.0)


def _cuba(du: int, dv: int, vth: int, bias, dt: float, shape: tuple[int, ...], meta: dict) -> nir.CubaLIF:
    """A CubaLIF node with the continuous fields of the integer neuron (du, dv, vth, per-neuron or one bias) under
    the exponential discretisation at ``dt`` (the module docstring's equations), and ``meta`` as its metadata."""
    a, b = (4095 - du) / 4096, (4096 - dv) / 4096
    with np.errstate(divide="ignore"):
        tau_syn = -dt / np.log(a) if a > 0 else 0.0          # a = 0: the current is cleared every step
        tau_mem = -dt / np.log(b) if b < 1 else np.inf       # b = 1: no leak
        r = 1.0 / (1.0 - b) if b < 1 else np.inf
    full = lambda value: np.full(shape, value, dtype=np.float64)   # noqa: E731
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(r), v_leak=_fill(leak(bias, r), shape),
                       v_threshold=full(float(vth << STATE_SHIFT)), v_reset=full(0.0),
                       w_in=full((1 << STATE_SHIFT) / (1.0 - a)), metadata=meta)


def network(net: DeployedNet, dt: float, n_bins: int) -> Network:
    """The trained model as the hardware network (``hardware/graph/ir.py``), which :func:`to_nir` writes: a
    population ``lif<k>`` per layer (``rnn<k>.lif`` for a recurrent one, its recurrent weights a projection onto
    itself), one projection per layer's weights, each with the path of NIR nodes it is written as (``fc<k>`` or
    ``conv<k>``, a ``flatten<k>`` before a dense layer after a convolution, ``rnn<k>.w_rec``)."""
    pops, projections, source, shape = {}, [], "input", tuple(net.input_shape)
    for k, layer in enumerate(net.layers, start=1):
        name, p = (f"rnn{k}.lif" if layer.recurrent is not None else f"lif{k}"), layer.neuron
        size = math.prod(layer.out_shape)
        pops[name] = Neurons(name, tuple(layer.out_shape), p.du, p.dv, p.vth, np.full(size, p.bias, np.int64),
                             np.zeros(size, np.int64), np.zeros(size, np.int64))
        q, c = np.asarray(layer.weight, np.int64), layer.conv
        synapse = Dense(q, layer.weight_exp) if c is None else \
            Conv(q, layer.weight_exp, tuple(c.in_shape), (c.stride,) * 2, (c.padding,) * 2)
        flatten = (f"flatten{k}",) if c is None and len(shape) > 1 else ()
        delay = 1 if layer.delay is None else 1 + np.broadcast_to(layer.delay, q.shape).astype(np.int64)
        lines = (f"delay{k}",) if per_input(delay) else ()
        projections.append(Projection(source, name, synapse, delay, flatten + lines + (layer.name,)))
        if layer.recurrent is not None:
            projections.append(Projection(name, name, Dense(np.asarray(layer.recurrent, np.int64), layer.weight_exp),
                                          1, (f"rnn{k}.w_rec",)))
        source, shape = name, tuple(layer.out_shape)
    return Network(tuple(net.input_shape), pops, tuple(projections), (source,), dt, n_bins, net.n_steps(n_bins))


def per_input(delay) -> bool:
    """Whether per-synapse delays (out, in) are one delay per input (equal down each column), not all equal: what
    a NIR ``Delay`` node on the input signal says (written before the weights, ``delay<k>``)."""
    d = np.asarray(delay)
    return d.ndim == 2 and bool(np.all(d == d[:1])) and not np.all(d == d.flat[0])


def to_nir(net: DeployedNet, dt: float, n_bins: int) -> nir.NIRGraph:
    """The NIR graph of the trained model ``net`` (dt in seconds, ``n_bins`` input time bins per sample): its
    hardware network (:func:`network`) written by the one writer, with the model's node names, and each recurrent
    layer written as the NIR paper writes one (a subgraph ``rnn<k>`` of the CubaLIF and its recurrent Linear)."""
    hw = network(net, dt, n_bins)
    meta = {"delay_per_layer": 1, "input_encoding": "binary: frame count > 0",
            "readout": "argmax of output spike counts, lowest index on ties",
            "nir_version": nir.__version__ if hasattr(nir, "__version__") else "1.0"}
    model_layers = {pop: layer.name for pop, layer in zip(hw.populations, net.layers)}
    graph, _ = _write(hw, n_bins, hw.n_steps, meta, Layout(by_path=True, subgraphs=True, model_layers=model_layers))
    return graph


def write(graph: nir.NIRGraph, path: str | Path) -> None:
    """Write atomically: a crash never leaves a half-written graph at ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    nir.write(tmp, graph)
    tmp.replace(path)


# --- any network read by hardware/graph/read.py, as NIR with our integer contract -------------------------------------

def _node_name(name: str, taken: set[str]) -> str:
    """A NIR node name for a population or synapse: dots (our inlined subgraphs) become '_', made unique."""
    base = name.replace(".", "_").replace("/", "_") or "node"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


def _whole_or_each(a: np.ndarray):
    """Per-neuron integers as one number when they are all equal (the usual case), else the array."""
    a = np.asarray(a, dtype=np.int64).ravel()
    return int(a[0]) if a.size and np.all(a == a[0]) else a


def _population_shapes(net) -> dict[str, tuple[int, ...]]:
    """The shape each population is written with: a convolution's output shape (C, H, W) where one feeds it (a
    1-D convolution is one of height 1), else (N,): a Linear node's output, so that NIR's type check holds."""
    shapes = {}
    for k, pop in net.populations.items():
        incoming = [p for p in net.projections if p.target == k and p.source != "bias"]
        convs = [p.synapse for p in incoming if isinstance(p.synapse, Conv)]
        if convs and len(convs) != len(incoming):
            raise GraphError(f"layer {k}: fed by a convolution and a dense projection; NIR has no reshape node "
                             "to write that with")
        shapes[k] = tuple(convs[0].out_shape) if convs else (pop.size,)
    return shapes


@dataclass(frozen=True)
class Layout:
    """How the one writer lays a network out as NIR nodes. The default is verify's for any graph it read: nodes
    named after the populations (``src_to_tgt`` for a projection), recurrence as a plain cycle of edges. A trained
    model's (:func:`to_nir`): projections named by their path (``flatten2``, ``fc2``), a population ``X.lif``
    with weights onto itself written as the subgraph ``X`` (CubaLIF ``lif`` and Linear ``w_rec``), and the
    PyTorch layer name of each population in its metadata (``model_layer``)."""
    by_path: bool = False
    subgraphs: bool = False
    model_layers: dict = field(default_factory=dict)


def _population_node(net, k: str, pop, shape: tuple[int, ...], layout: Layout) -> nir.CubaLIF:
    """Population ``k`` as a CubaLIF with the integer contract in its metadata; bias-source projections into it
    are stored there too (NIR has no node type for them)."""
    meta = {"layer": k, **({"model_layer": layout.model_layers[k]} if k in layout.model_layers else {}),
            "du": pop.du, "dv": pop.dv, "vth": pop.vth, "bias_mant": _whole_or_each(pop.bias_mant),
            "bias_exp": _whole_or_each(pop.bias_exp), "v0": _whole_or_each(pop.v0), "spiking": bool(pop.spiking),
            "kind": pop.kind, **_NEURON_CONTRACT}
    biases = [p for p in net.projections if p.target == k and p.source == "bias"]
    for j, p in enumerate(biases):
        if isinstance(p.synapse, Conv):
            raise GraphError(f"projection {p.name}: a bias input through a convolution")
        meta.update({f"bias_in{j}_mantissa": np.asarray(p.synapse.weight, np.int64),
                     f"bias_in{j}_exp": int(p.synapse.exp), f"bias_in{j}_delay": p.delay})
    if biases:
        meta["bias_inputs"] = len(biases)
    return _cuba(pop.du, pop.dv, pop.vth, pop.bias, net.dt, shape, meta)


def _synapse_node(p, src_shape: tuple[int, ...]) -> nir.Linear | nir.Conv2d:
    """Projection ``p``'s weights as a Linear or Conv2d node, the integer mantissas, exponent and delay in its
    metadata."""
    syn = p.synapse
    w = syn.weight.astype(np.float64) * 2.0**syn.exp
    q = np.asarray(syn.weight, np.int64)
    meta = {"weight_mantissa": q.astype(np.int16) if np.abs(q).max(initial=0) < 2**15 else q,
            "weight_exp": int(syn.exp), "weight_bits": WEIGHT_BITS,
            "delay": p.delay if np.ndim(p.delay) else int(p.delay)}
    if not isinstance(syn, Conv):
        return nir.Linear(weight=w, metadata=meta)
    if src_shape != tuple(syn.in_shape):
        raise GraphError(f"projection {p.name}: a convolution over {syn.in_shape} from a source of shape "
                         f"{src_shape}; NIR has no reshape node to write it with")
    if syn.pool:
        meta["pool"] = syn.pool
    return nir.Conv2d(input_shape=np.array(syn.in_shape[1:]), weight=w, stride=np.array(syn.stride),
                      padding=np.array(syn.padding), dilation=np.array(syn.dilation), groups=int(syn.groups),
                      bias=np.zeros(syn.weight.shape[0]), metadata=meta)


def _projection_nodes(net, p, names: dict, shapes: dict, taken: set, nodes: dict,
                      layout: Layout) -> list[tuple[str, str]]:
    """Projection ``p`` as a Conv2d or a Linear node (a Flatten before a Linear fed by a shaped source), added to
    ``nodes``; returns its edges."""
    src = "input" if p.source == "input" else names[p.source]
    src_shape = tuple(net.input_shape) if p.source == "input" else shapes[p.source]
    node_name = _node_name(p.path[-1] if layout.by_path and p.path else f"{p.source}_to_{p.target}", taken)
    edges = []
    if not isinstance(p.synapse, Conv) and len(src_shape) > 1:
        flat = _node_name(p.path[0] if layout.by_path and len(p.path) > 1 else f"{node_name}_flatten", taken)
        nodes[flat] = nir.Flatten(input_type={"input": np.array(src_shape)}, start_dim=0, end_dim=-1)
        edges.append((src, flat))
        src = flat
    if not isinstance(p.synapse, Conv) and per_input(p.delay):    # the exact delays stay in the weights' metadata
        line = _node_name(p.path[-2] if layout.by_path and len(p.path) > 1 else f"{node_name}_delay", taken)
        nodes[line] = nir.Delay(delay=(np.asarray(p.delay)[0] - 1).astype(np.float64) * net.dt)
        edges.append((src, line))
        src = line
    nodes[node_name] = _synapse_node(p, src_shape)
    return edges + [(src, node_name), (node_name, names[p.target])]


def _subgraph(net, k: str, node: nir.CubaLIF, rec, layout: Layout) -> nir.NIRGraph:
    """A recurrent population as the NIR paper writes one: the subgraph of its CubaLIF ``lif`` and its recurrent
    Linear ``w_rec``, its own spikes of the previous step returning through it."""
    n = np.array([net.populations[k].size])
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": n}), "lif": node,
                               "w_rec": _synapse_node(rec, (int(n[0]),)),
                               "output": nir.Output(output_type={"output": n})},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                        metadata={"recurrent": True, **({"model_layer": layout.model_layers[k]}
                                                        if k in layout.model_layers else {})})


def from_network(net, n_steps: int, provenance: dict | None = None) -> tuple[nir.NIRGraph, dict[str, str]]:
    """``net`` (``hardware.graph.ir.Network``, e.g. a foreign graph as ``verify`` quantised it) as a NIR graph carrying
    our integer contract, so that ``hardware/graph/read.py`` reads back exactly the same network; and the NIR node name
    of each population. The graph runs ``n_steps`` steps per sample (its input's).

    Every population is a ``CubaLIF`` (continuous fields derived from du, dv and vth by :func:`_cuba`); its
    metadata has the integers, per-neuron bias (``bias_mant``, ``bias_exp``) and initial voltage (``v0``) as one
    number or an array, ``spiking`` (false: a readout whose voltage is the output) and the NIR type it was read
    from (``kind``). Every projection is one ``Linear`` or ``Conv2d`` node (a ``Flatten`` before a dense one fed
    by a shaped population) with ``weight_mantissa``, ``weight_exp`` and ``delay`` (steps; an array for
    per-synapse delays). A projection from the always-on bias source has no NIR node type: it is stored in the
    target's metadata as ``bias_in<j>_mantissa`` (N, 1), ``bias_in<j>_exp``, ``bias_in<j>_delay``."""
    return _write(net, n_steps, n_steps, provenance or {}, Layout())


def _write(net, n_bins: int, n_steps: int, extra: dict, layout: Layout) -> tuple[nir.NIRGraph, dict[str, str]]:
    """The one NIR writer: every graph this tool writes comes from a hardware network through here."""
    taken = {"input"}
    nodes = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    shapes = _population_shapes(net)
    own = {p.target: p for p in net.projections if p.source == p.target and layout.subgraphs
           and isinstance(p.synapse, Dense) and p.target.endswith(".lif")}
    names = {k: _node_name(k.removesuffix(".lif") if k in own else k, taken) for k in net.populations}
    edges, pops = [], {}
    for k, pop in net.populations.items():
        node = _population_node(net, k, pop, shapes[k], layout)
        pops[names[k]] = _subgraph(net, k, node, own[k], layout) if k in own else node
    if not layout.by_path:          # verify's: the populations first, then the projections
        nodes.update(pops)
    for k in net.populations:
        for p in net.projections:
            if p.target == k and p.source != "bias" and p is not own.get(k):
                edges += _projection_nodes(net, p, names, shapes, taken, nodes, layout)
        if layout.by_path:          # a model's: in the order of the flow, each layer's weights before its neurons
            nodes[names[k]] = pops[names[k]]
    for k in net.readout:
        out = _node_name("output" if len(net.readout) == 1 else f"output_{k}", taken)
        nodes[out] = nir.Output(output_type={"output": np.array(shapes[k])})
        edges.append((names[k], out))
    meta = {"contract": CONTRACT, "dt": float(net.dt), "n_bins": int(n_bins), "n_steps": int(n_steps),
            "reset_rule": "zero", "input_encoding": "binary spikes per step",
            "discretisation": "exponential (zero-order hold), see export/nir_export.py", **extra}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta), names
