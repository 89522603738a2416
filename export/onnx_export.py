"""The NIR graph's integer dynamics as an ONNX model, run in onnxruntime; and a float ONNX model of the same net.

Time handling: the ONNX model is ONE time step, with every layer's state (u, v and the spikes that arrived one
step ago) as inputs and outputs, and the loop over steps runs outside in Python. Why: the number of steps is a
property of the data (T + depth), not of the network, so one model serves every T; the step is the unit the
hardware and NIR's CubaLIF define, so a divergence is found at the exact step; an unrolled graph would grow
linearly with T and an ONNX ``Loop`` hides the per-step state that the equivalence check compares. The cost is
one onnxruntime call per step for a whole batch of samples.

Integer arithmetic in int64, the contract of models/neuron.py:

- synaptic input ``a = shift(prev @ W^T, e)``: ``MatMul`` on int64; ``e >= 0`` multiplies by 2^e, ``e < 0`` is a
  floor division by 2^-e written as ``(acc - Mod(acc, d)) / d`` (ONNX ``Div`` truncates toward zero and
  onnxruntime rejects a signed ``BitShift``);
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

from hardware.graph import Chain, input_spikes
from pipeline.runfolder import atomic_write

OPSET, IR_VERSION = 21, 10     # IR 10 loads in onnxruntime >= 1.16 (1.31 is installed)
_MAX = 2**23


class _Builder:
    def __init__(self, dtype: int):
        self.nodes, self.inits, self.dtype, self.n = [], [], dtype, 0

    def const(self, value, name: str | None = None) -> str:
        self.n += 1
        name = name or f"c{self.n}"
        np_type = np.int64 if self.dtype == TensorProto.INT64 else np.float32
        self.inits.append(numpy_helper.from_array(np.asarray(value, np_type), name))
        return name

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs) -> str:
        self.n += 1
        out = out or f"{kind.lower()}{self.n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out


def _step_graph(chain: Chain, integer: bool) -> onnx.ModelProto:
    dt = TensorProto.INT64 if integer else TensorProto.FLOAT
    b = _Builder(dt)
    inputs, outputs = [], []
    for l, L in enumerate(chain.layers):
        n_in, n_out = L.weight.shape[1], L.weight.shape[0]
        inputs += [helper.make_tensor_value_info(f"in{l}", dt, ["batch", n_in]),
                   helper.make_tensor_value_info(f"u{l}", dt, ["batch", n_out]),
                   helper.make_tensor_value_info(f"v{l}", dt, ["batch", n_out])]
        w = b.const(L.weight.T, f"{L.name}.weight_t")
        acc = b.op("MatMul", f"in{l}", w)
        if L.weight_exp >= 0:
            a = b.op("Mul", acc, b.const(2**L.weight_exp))
        elif integer:
            d = b.const(2**-L.weight_exp)
            a = b.op("Div", b.op("Sub", acc, b.op("Mod", acc, d)), d)
        else:
            a = b.op("Floor", b.op("Div", acc, b.const(2**-L.weight_exp)))
        u_keep, v_keep = 4096 - (L.du + 1), 4096 - L.dv
        if integer:
            u = b.op("Add", b.op("Div", b.op("Mul", f"u{l}", b.const(u_keep)), b.const(4096)),
                     b.op("Mul", a, b.const(64)))
            u = b.op("Where", b.op("Greater", u, b.const(_MAX)), b.op("Sub", u, b.const(2 * _MAX)), u)
            u = b.op("Where", b.op("LessOrEqual", u, b.const(-_MAX)), b.op("Add", u, b.const(2 * _MAX)), u)
            v = b.op("Div", b.op("Mul", f"v{l}", b.const(v_keep)), b.const(4096))
        else:
            u = b.op("Add", b.op("Mul", f"u{l}", b.const(u_keep / 4096)), b.op("Mul", a, b.const(64)))
            v = b.op("Mul", f"v{l}", b.const(v_keep / 4096))
        b.op("Identity", u, out=f"u{l}_next")
        v = b.op("Add", b.op("Add", v, u), b.const(L.bias))
        v = b.op("Max", b.op("Min", v, b.const(_MAX - 1)), b.const(-_MAX + 1))
        spike = b.op("Greater", v, b.const(L.vth << 6))
        b.op("Where", spike, b.const(0), v, out=f"v{l}_next")
        b.op("Cast", spike, to=dt, out=f"s{l}")
        outputs += [helper.make_tensor_value_info(f"s{l}", dt, ["batch", n_out]),
                    helper.make_tensor_value_info(f"u{l}_next", dt, ["batch", n_out]),
                    helper.make_tensor_value_info(f"v{l}_next", dt, ["batch", n_out])]
    kind = "integer (int64)" if integer else "float32"
    graph = helper.make_graph(b.nodes, "cuba_lif_step", inputs, outputs, b.inits,
                              doc_string=f"one time step of {len(chain.layers)} Dense -> CUBA LIF layers, {kind}; "
                                         "in<l> = spikes that reached layer l one step ago")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nmpipe")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"n_bins": str(chain.n_bins), "n_steps": str(chain.n_steps),
                                   "dt": str(chain.dt), "arithmetic": kind})
    onnx.checker.check_model(model, full_check=True)
    return model


def to_onnx(chain: Chain, integer: bool = True) -> onnx.ModelProto:
    """One time step of ``chain`` as a checked ONNX model (int64 arithmetic, or float32 with ``integer=False``)."""
    return _step_graph(chain, integer)


def write(model: onnx.ModelProto, path: Path) -> None:
    atomic_write(path, lambda p: onnx.save(model, str(p)))


def simulate(chain: Chain, frames: np.ndarray, model: onnx.ModelProto | str | Path) -> list[np.ndarray]:
    """Run the step model over every step in onnxruntime: spikes of every layer, each (B, n_steps, N_l) bool."""
    import onnxruntime as ort
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    np_type = np.int64 if proto.graph.input[0].type.tensor_type.elem_type == TensorProto.INT64 else np.float32
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = input_spikes(chain, frames).astype(np_type)
    B, n, _ = x.shape
    feed = {}
    for l, L in enumerate(chain.layers):
        feed[f"in{l}"] = np.zeros((B, L.weight.shape[1]), np_type)
        feed[f"u{l}"] = feed[f"v{l}"] = np.zeros((B, L.weight.shape[0]), np_type)
    names = [f"{k}{l}" for l in range(len(chain.layers)) for k in ("s", "u", "v")]
    fetch = [name if name[0] == "s" else f"{name}_next" for name in names]
    out = [np.zeros((B, n, L.weight.shape[0]), bool) for L in chain.layers]
    for t in range(n):
        res = dict(zip(names, session.run(fetch, feed)))
        nxt = {"in0": x[:, t]}
        for l in range(len(chain.layers)):
            out[l][:, t] = res[f"s{l}"] > 0
            feed[f"u{l}"], feed[f"v{l}"] = res[f"u{l}"], res[f"v{l}"]
            if l + 1 < len(chain.layers):
                nxt[f"in{l + 1}"] = res[f"s{l}"]
        feed.update(nxt)
    return out
