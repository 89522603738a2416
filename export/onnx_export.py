"""A network's integer dynamics as an ONNX model (one time step), and a float ONNX model of the same network.

Time handling: the ONNX model is ONE time step, with every population's state (u, v) and the spikes each
projection delivers (its source's spikes one step ago) as inputs and outputs; the loop over steps runs outside
(``hardware/backends/onnx.py``). Why: the number of steps is a property of the data (T + depth), not of the
network, so one model serves every T; the step is the unit the hardware and NIR's CubaLIF define, so a divergence
is found at the exact step; an unrolled graph would grow linearly with T and an ONNX ``Loop`` hides the per-step
state that the equivalence check compares. The cost is one onnxruntime call per step for a whole batch.

Integer arithmetic in int64, the contract of ``hardware/graph/ir.py``:

- dense input ``a = shift(prev @ W^T, e)``: ``MatMul`` on int64; ``e >= 0`` multiplies by 2^e, ``e < 0`` is a
  floor division by 2^-e written as ``(acc - Mod(acc, d)) / d`` (ONNX ``Div`` truncates toward zero and
  onnxruntime rejects a signed ``BitShift``);
- a convolution is ``ConvInteger`` on uint8 spikes and int8 kernel mantissas, accumulated in int32 by
  onnxruntime (exact: |sum| <= 128 x fan-in), then cast to int64 and multiplied by 2^e (e >= 0);
- decays ``trunc(x * keep / 4096)``: integer ``Div`` truncates toward zero, exactly Loihi's rounding;
- ``u`` wraps once at 24 bits (``Where``), ``v`` saturates (``Min``/``Max``), spikes ``v > vth << 6``, ``v`` resets
  to zero where a spike was emitted.

The float model computes the same equations in float32 without truncation or wrapping (what a float export of
the trained network would compute); its agreement with the golden model is measured, not assumed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.files import atomic_write
from hardware.errors import GraphError
from hardware.graph.ir import STATE_MAX, Conv, Network

OPSET, IR_VERSION = 21, 10     # IR 10 loads in onnxruntime >= 1.16 (1.31 is installed)


class _Builder:
    def __init__(self, dtype: int):
        self.nodes, self.inits, self.dtype, self.n = [], [], dtype, 0

    def const(self, value, name: str | None = None, np_type=None) -> str:
        self.n += 1
        name = name or f"c{self.n}"
        np_type = np_type or (np.int64 if self.dtype == TensorProto.INT64 else np.float32)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np_type), name))
        return name

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs) -> str:
        self.n += 1
        out = out or f"{kind.lower()}{self.n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out


def exportable(net: Network) -> None:
    """The step model takes networks of ours: no bias projection, per-synapse delays on dense projections only."""
    for p in net.projections:
        if p.source == "bias" or (isinstance(p.synapse, Conv) and np.ndim(p.delay)):
            raise GraphError(f"projection {p.name}: the ONNX step model takes no bias source and no per-synapse "
                             "delays on a convolution")


def _shifted(b: _Builder, acc: str, exp: int, integer: bool) -> str:
    """The weight exponent applied to an accumulator (the module docstring's integer floor division)."""
    if exp >= 0:
        return b.op("Mul", acc, b.const(2**exp))
    if integer:
        d = b.const(2**-exp)
        return b.op("Div", b.op("Sub", acc, b.op("Mod", acc, d)), d)
    return b.op("Floor", b.op("Div", acc, b.const(2**-exp)))


def _projection(b: _Builder, p, i: int, integer: bool) -> str:
    """Projection i's synaptic input: one group of equal delays at a time, each shifted on its own (as Lava's
    DelayDense accumulates them); ``in<i>`` is the source's spikes one step ago, or for a delayed projection the
    (batch, D, in) line of its spikes 1..D steps ago, most recent first."""
    syn, name = p.synapse, f"in{i}"
    if p.max_delay == 1:
        if isinstance(syn, Conv):
            return _shifted(b, _conv(b, syn, name, integer, f"p{i}"), syn.exp, integer)
        return _shifted(b, b.op("MatMul", name, b.const(syn.weight.T, f"p{i}.weight_t")), syn.exp, integer)
    delay = np.asarray(p.delay)
    a = None
    for d in np.unique(delay):
        spikes = b.op("Gather", name, b.const(np.array(int(d) - 1), np_type=np.int64), axis=1)
        if isinstance(syn, Conv):
            acc = _conv(b, syn, spikes, integer, f"p{i}.d{d}")
        else:
            w = syn.weight if delay.ndim == 0 else np.where(delay == d, syn.weight, 0)
            acc = b.op("MatMul", spikes, b.const(w.T, f"p{i}.d{d}.weight_t"))
        term = _shifted(b, acc, syn.exp, integer)
        a = term if a is None else b.op("Add", a, term)
    return a


def _conv(b: _Builder, syn: Conv, spikes: str, integer: bool, name: str) -> str:
    shape = b.const(np.array([-1, *syn.in_shape]), np_type=np.int64)
    x = b.op("Reshape", spikes, shape)
    attrs = dict(pads=[syn.padding[0], syn.padding[1], syn.padding[0], syn.padding[1]], strides=list(syn.stride),
                 dilations=list(syn.dilation), group=syn.groups)
    if integer:
        w = b.const(syn.weight, f"{name}.kernel", np_type=np.int8)
        acc = b.op("Cast", b.op("ConvInteger", b.op("Cast", x, to=TensorProto.UINT8), w, **attrs), to=b.dtype)
    else:
        acc = b.op("Conv", x, b.const(syn.weight, f"{name}.kernel"), **attrs)
    return b.op("Reshape", acc, b.const(np.array([-1, syn.out_size]), np_type=np.int64))


def _step_graph(net: Network, integer: bool) -> onnx.ModelProto:
    exportable(net)
    dt = TensorProto.INT64 if integer else TensorProto.FLOAT
    b = _Builder(dt)
    inputs, outputs = [], []
    for i, p in enumerate(net.projections):
        line = [p.max_delay] if p.max_delay > 1 else []
        inputs.append(helper.make_tensor_value_info(f"in{i}", dt, ["batch", *line, p.synapse.in_size]))
    for k, (name, pop) in enumerate(net.populations.items()):
        n = pop.size
        inputs += [helper.make_tensor_value_info(f"u{k}", dt, ["batch", n]),
                   helper.make_tensor_value_info(f"v{k}", dt, ["batch", n])]
        a = None
        for i, p in enumerate(net.projections):
            if p.target == name:
                term = _projection(b, p, i, integer)
                a = term if a is None else b.op("Add", a, term)
        u_keep, v_keep = 4096 - (pop.du + 1), 4096 - pop.dv
        if integer:
            u = b.op("Add", b.op("Div", b.op("Mul", f"u{k}", b.const(u_keep)), b.const(4096)),
                     b.op("Mul", a, b.const(64)))
            u = b.op("Where", b.op("Greater", u, b.const(STATE_MAX)), b.op("Sub", u, b.const(2 * STATE_MAX)), u)
            u = b.op("Where", b.op("LessOrEqual", u, b.const(-STATE_MAX)), b.op("Add", u, b.const(2 * STATE_MAX)), u)
            v = b.op("Div", b.op("Mul", f"v{k}", b.const(v_keep)), b.const(4096))
        else:
            u = b.op("Add", b.op("Mul", f"u{k}", b.const(u_keep / 4096)), b.op("Mul", a, b.const(64)))
            v = b.op("Mul", f"v{k}", b.const(v_keep / 4096))
        b.op("Identity", u, out=f"u{k}_next")
        v = b.op("Add", b.op("Add", v, u), b.const(pop.bias))
        v = b.op("Max", b.op("Min", v, b.const(STATE_MAX - 1)), b.const(-STATE_MAX + 1))
        spike = b.op("Greater", v, b.const(pop.vth << 6))
        b.op("Where", spike, b.const(0), v, out=f"v{k}_next")
        b.op("Cast", spike, to=dt, out=f"s{k}")
        outputs += [helper.make_tensor_value_info(f"s{k}", dt, ["batch", n]),
                    helper.make_tensor_value_info(f"u{k}_next", dt, ["batch", n]),
                    helper.make_tensor_value_info(f"v{k}_next", dt, ["batch", n])]
    kind = "integer (int64)" if integer else "float32"
    doc = (f"one time step of {len(net.populations)} CUBA LIF populations ({', '.join(net.populations)}), {kind}; "
           "in<i> = the spikes projection i delivers (its source's spikes one step ago; for a projection with "
           "delays of up to D steps, (batch, D, inputs): its source's spikes 1..D steps ago), in the order of "
           "metadata 'projections'")
    graph = helper.make_graph(b.nodes, "cuba_lif_step", inputs, outputs, b.inits, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nmpipe")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"n_bins": str(net.n_bins), "n_steps": str(net.n_steps), "dt": str(net.dt),
                                   "arithmetic": kind, "populations": ",".join(net.populations),
                                   "projections": ",".join(p.name for p in net.projections)})
    onnx.checker.check_model(model, full_check=True)
    return model


def to_onnx(net: Network, integer: bool = True) -> onnx.ModelProto:
    """One time step of ``net`` as a checked ONNX model (int64 arithmetic, or float32 with ``integer=False``)."""
    return _step_graph(net, integer)


def write(model: onnx.ModelProto, path: Path) -> None:
    atomic_write(path, lambda p: onnx.save(model, str(p)))
