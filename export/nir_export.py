"""Deployed integer network -> NIR 1.0 graph, written on the nir API.

snnTorch 1.0's ``export_to_nir`` fails with nir 1.0.8 and does not keep reset semantics, so we write the nodes
ourselves. Each layer is ``Linear`` or ``Conv2d`` (weights ``q * 2**e``; a ``Flatten`` before the first dense layer
after a convolution) followed by ``CubaLIF`` with continuous-time
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

from hardware.ir import CONTRACT
from models.neuron import STATE_SHIFT
from models.snn import DeployedNet



def _cuba_node(layer, dt: float) -> nir.CubaLIF:
    p, shape = layer.neuron, layer.out_shape
    a, b = p.u_keep / 4096, p.v_keep / 4096
    with np.errstate(divide="ignore"):
        tau_syn = -dt / np.log(a) if a > 0 else 0.0          # a = 0: the current is cleared every step
        tau_mem = -dt / np.log(b) if b < 1 else np.inf       # b = 1: no leak
        r = 1.0 / (1.0 - b) if b < 1 else np.inf
    full = lambda value: np.full(shape, value, dtype=np.float64)   # noqa: E731
    meta = {"layer": layer.name, "du": p.du, "dv": p.dv, "vth": p.vth, "bias_mant": p.bias, "bias_exp": 0,
            "reset": "zero", "refractory": 0, "state_bits": 24, "spike_rule": "v > vth << 6",
            "decay_rounding": "truncate toward zero"}
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(r), v_leak=full(0.0),
                       v_threshold=full(float(p.theta)), v_reset=full(0.0),
                       w_in=full((1 << STATE_SHIFT) / (1.0 - a)), metadata=meta)


def _synapse_node(layer):
    """Linear (weights ``q * 2**e``) or Conv2d (kernel ``q * 2**e``, PyTorch's cross-correlation), with the
    integer mantissas and exponent in metadata."""
    w = layer.weight.astype(np.float64) * 2.0**layer.weight_exp
    meta = {"weight_mantissa": layer.weight.astype(np.int8), "weight_exp": layer.weight_exp, "weight_bits": 8,
            "delay": 1}
    if layer.conv is None:
        return nir.Linear(weight=w, metadata=meta)
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
        nodes[f"lif{k}"] = _cuba_node(layer, dt)
        edges += [(prev, layer.name), (layer.name, f"lif{k}")]
        prev, shape = f"lif{k}", layer.out_shape
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
