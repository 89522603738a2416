"""Deployed integer network -> NIR 1.0 graph, written on the nir API.

snnTorch 1.0's ``export_to_nir`` fails with nir 1.0.8 and does not keep reset semantics, so we write the nodes
ourselves. Each layer is ``Linear`` or ``Conv2d`` (weights ``q * 2**e``; a ``Flatten`` before the first dense layer
after a convolution) followed by ``CubaLIF`` (a recurrent layer: a subgraph ``rnnK`` of the ``CubaLIF`` and its
recurrent ``Linear``, as the NIR paper writes recurrent layers) with continuous-time
parameters a third-party reader can use, under the exponential (zero-order-hold) discretisation with step ``dt``:

    I[t] = a I[t-1] + (1 - a) w_in x[t],   a = exp(-dt / tau_syn)   ->  w_in = 64 / (1 - a)
    v[t] = b v[t-1] + (1 - b) r I[t],      b = exp(-dt / tau_mem)   ->  r = 1 / (1 - b)
    spike when v > v_threshold (= vth * 64), then v = v_reset = 0

The exact integer contract (weight mantissas and exponents, du, dv, vth, bias, truncation, reset rule, one-step
delay per layer, dt, number of steps) is in node and graph metadata, so nothing is lost for hardware.
"""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from hardware.chip.loihi2 import Limits
from hardware.graph.ir import CONTRACT
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


def _cuba_node(layer, dt: float, name: str) -> nir.CubaLIF:
    """The layer's neurons; ``name`` is the node's path in the graph, which names the layer everywhere after
    export (the reader takes the population's name from metadata ``layer``): in divergences, reports,
    certificates and vectors.h5 alike. ``model_layer`` is the PyTorch model's name for it."""
    p = layer.neuron
    return _cuba(p.du, p.dv, p.vth, p.bias, dt, layer.out_shape,
                 {"layer": name, "model_layer": layer.name, "du": p.du, "dv": p.dv, "vth": p.vth, "bias_mant": p.bias,
                  "bias_exp": 0, **_NEURON_CONTRACT})


def _linear(q: np.ndarray, exp: int) -> nir.Linear:
    """A Linear node of weights ``q * 2**exp``, the integer mantissas and exponent in metadata."""
    meta = {"weight_mantissa": q.astype(np.int8), "weight_exp": exp, "weight_bits": WEIGHT_BITS, "delay": 1}
    return nir.Linear(weight=q.astype(np.float64) * 2.0**exp, metadata=meta)


def _recurrent(layer, dt: float, name: str) -> nir.NIRGraph:
    """A recurrent layer as the NIR paper writes one: a subgraph ``name`` of the CubaLIF (``name.lif``) and its
    recurrent Linear, the layer's own spikes of the previous step returning through it."""
    n = layer.out_shape[0]
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}),
                               "lif": _cuba_node(layer, dt, f"{name}.lif"),
                               "w_rec": _linear(layer.recurrent, layer.weight_exp),
                               "output": nir.Output(output_type={"output": np.array([n])})},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                        metadata={"recurrent": True, "model_layer": layer.name})


def _synapse_node(layer):
    """Linear (weights ``q * 2**e``) or Conv2d (kernel ``q * 2**e``, PyTorch's cross-correlation), with the
    integer mantissas and exponent in metadata."""
    if layer.conv is None:
        return _linear(layer.weight, layer.weight_exp)
    w = layer.weight.astype(np.float64) * 2.0**layer.weight_exp
    meta = {"weight_mantissa": layer.weight.astype(np.int8), "weight_exp": layer.weight_exp, "weight_bits": WEIGHT_BITS,
            "delay": 1}
    c = layer.conv
    return nir.Conv2d(input_shape=np.array(c.in_shape[1:]), weight=w, stride=np.array([c.stride] * 2),
                      padding=np.array([c.padding] * 2), dilation=np.array([1, 1]), groups=1,
                      bias=np.zeros(c.out_channels), metadata=meta)


def to_nir(net: DeployedNet, dt: float, n_bins: int) -> nir.NIRGraph:
    """Build the NIR graph of ``net`` (dt in seconds, ``n_bins`` input time bins per sample)."""
    nodes = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    edges, prev, shape = [], "input", tuple(net.input_shape)
    for k, layer in enumerate(net.layers, start=1):
        if layer.conv is None and len(shape) > 1:
            nodes[f"flatten{k}"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            edges.append((prev, f"flatten{k}"))
            prev = f"flatten{k}"
        nodes[layer.name] = _synapse_node(layer)
        neuron = f"rnn{k}" if layer.recurrent is not None else f"lif{k}"
        nodes[neuron] = _recurrent(layer, dt, neuron) if layer.recurrent is not None else \
            _cuba_node(layer, dt, neuron)
        edges += [(prev, layer.name), (layer.name, neuron)]
        prev, shape = neuron, layer.out_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(net.layers[-1].out_shape)})
    edges.append((prev, "output"))
    meta = {"contract": CONTRACT, "dt": dt, "n_bins": n_bins, "n_steps": net.n_steps(n_bins),
            "delay_per_layer": 1, "reset_rule": "zero", "input_encoding": "binary: frame count > 0",
            "readout": "argmax of output spike counts, lowest index on ties",
            "discretisation": "exponential (zero-order hold), see export/nir_export.py",
            "nir_version": nir.__version__ if hasattr(nir, "__version__") else "1.0"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


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
    from hardware.errors import GraphError
    from hardware.graph.ir import Conv
    shapes = {}
    for k, pop in net.populations.items():
        incoming = [p for p in net.projections if p.target == k and p.source != "bias"]
        convs = [p.synapse for p in incoming if isinstance(p.synapse, Conv)]
        if convs and len(convs) != len(incoming):
            raise GraphError(f"layer {k}: fed by a convolution and a dense projection; NIR has no reshape node "
                             "to write that with")
        shapes[k] = tuple(convs[0].out_shape) if convs else (pop.size,)
    return shapes


def _population_node(net, k: str, pop, shape: tuple[int, ...]) -> nir.CubaLIF:
    """Population ``k`` as a CubaLIF with the integer contract in its metadata; bias-source projections into it
    are stored there too (NIR has no node type for them)."""
    from hardware.errors import GraphError
    from hardware.graph.ir import Conv
    meta = {"layer": k, "du": pop.du, "dv": pop.dv, "vth": pop.vth, "bias_mant": _whole_or_each(pop.bias_mant),
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


def _projection_nodes(net, p, names: dict, shapes: dict, taken: set, nodes: dict) -> list[tuple[str, str]]:
    """Projection ``p`` as a Conv2d or a Linear node (a Flatten before a Linear fed by a shaped source), added to
    ``nodes``; returns its edges."""
    from hardware.errors import GraphError
    from hardware.graph.ir import Conv
    src = "input" if p.source == "input" else names[p.source]
    src_shape = tuple(net.input_shape) if p.source == "input" else shapes[p.source]
    syn, edges = p.synapse, []
    w = syn.weight.astype(np.float64) * 2.0**syn.exp
    q = np.asarray(syn.weight, np.int64)
    meta = {"weight_mantissa": q.astype(np.int16) if np.abs(q).max(initial=0) < 2**15 else q,
            "weight_exp": int(syn.exp), "weight_bits": WEIGHT_BITS,
            "delay": p.delay if np.ndim(p.delay) else int(p.delay)}
    node_name = _node_name(f"{p.source}_to_{p.target}", taken)
    if isinstance(syn, Conv):
        if src_shape != tuple(syn.in_shape):
            raise GraphError(f"projection {p.name}: a convolution over {syn.in_shape} from a source of shape "
                             f"{src_shape}; NIR has no reshape node to write it with")
        if syn.pool:
            meta["pool"] = syn.pool
        nodes[node_name] = nir.Conv2d(input_shape=np.array(syn.in_shape[1:]), weight=w,
                                      stride=np.array(syn.stride), padding=np.array(syn.padding),
                                      dilation=np.array(syn.dilation), groups=int(syn.groups),
                                      bias=np.zeros(syn.weight.shape[0]), metadata=meta)
    else:
        if len(src_shape) > 1:
            flat = _node_name(f"{node_name}_flatten", taken)
            nodes[flat] = nir.Flatten(input_type={"input": np.array(src_shape)}, start_dim=0, end_dim=-1)
            edges.append((src, flat))
            src = flat
        nodes[node_name] = nir.Linear(weight=w, metadata=meta)
    return edges + [(src, node_name), (node_name, names[p.target])]


def from_network(net, n_steps: int, provenance: dict | None = None) -> tuple[nir.NIRGraph, dict[str, str]]:
    """``net`` (``hardware.graph.ir.Network``, e.g. a foreign graph as ``verify`` quantised it) as a NIR graph carrying
    our integer contract, so that ``hardware/graph/read.py`` reads back exactly the same network; and the NIR node name
    of each population.

    Every population is a ``CubaLIF`` (continuous fields derived from du, dv and vth as in :func:`to_nir`); its
    metadata has the integers, per-neuron bias (``bias_mant``, ``bias_exp``) and initial voltage (``v0``) as one
    number or an array, ``spiking`` (false: a readout whose voltage is the output) and the NIR type it was read
    from (``kind``). Every projection is one ``Linear`` or ``Conv2d`` node (a ``Flatten`` before a dense one fed
    by a shaped population) with ``weight_mantissa``, ``weight_exp`` and ``delay`` (steps; an array for
    per-synapse delays). A projection from the always-on bias source has no NIR node type: it is stored in the
    target's metadata as ``bias_in<j>_mantissa`` (N, 1), ``bias_in<j>_exp``, ``bias_in<j>_delay``."""
    taken = {"input"}
    nodes = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    shapes = _population_shapes(net)
    names = {k: _node_name(k, taken) for k in net.populations}
    for k, pop in net.populations.items():
        nodes[names[k]] = _population_node(net, k, pop, shapes[k])
    edges = []
    for p in net.projections:
        if p.source != "bias":
            edges += _projection_nodes(net, p, names, shapes, taken, nodes)
    for k in net.readout:
        out = _node_name("output" if len(net.readout) == 1 else f"output_{k}", taken)
        nodes[out] = nir.Output(output_type={"output": np.array(shapes[k])})
        edges.append((names[k], out))
    meta = {"contract": CONTRACT, "dt": float(net.dt), "n_bins": int(n_steps), "n_steps": int(n_steps),
            "reset_rule": "zero", "input_encoding": "binary spikes per step",
            "discretisation": "exponential (zero-order hold), see export/nir_export.py",
            **(provenance or {})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta), names
