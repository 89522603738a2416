"""Run the ONNX step model of a network (``export/onnx_export.py``) in onnxruntime, one call per time step for a
whole batch, feeding each projection the spikes its source emitted one step earlier (a projection with delays: the
last D steps' spikes, most recent first)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from hardware.backends.reference import Trace
from hardware.graph.ir import Network


def simulate(net: Network, x: np.ndarray, model: onnx.ModelProto | str | Path) -> Trace:
    """Spikes of every population, each (B, n_steps, N) bool, for input spikes ``x`` (B, n_steps, inputs)."""
    import onnxruntime as ort
    from onnx import TensorProto
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    np_type = np.int64 if proto.graph.input[0].type.tensor_type.elem_type == TensorProto.INT64 else np.float32
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    B, n, _ = x.shape
    x = x.astype(np_type)
    names = list(net.populations)
    line = lambda p: (p.max_delay,) if p.max_delay > 1 else ()        # noqa: E731  (a delay line's steps)
    feed = {f"in{i}": np.zeros((B, *line(p), p.synapse.in_size), np_type) for i, p in enumerate(net.projections)}
    for k, pop in enumerate(net.populations.values()):
        feed[f"u{k}"] = feed[f"v{k}"] = np.zeros((B, pop.size), np_type)
    fetch = [f"{s}{k}" if s == "s" else f"{s}{k}_next" for k in range(len(names)) for s in "suv"]
    out = {name: np.zeros((B, n, pop.size), bool) for name, pop in net.populations.items()}
    for t in range(n):
        res = dict(zip(fetch, session.run(fetch, feed)))
        for k, name in enumerate(names):
            out[name][:, t] = res[f"s{k}"] > 0
            feed[f"u{k}"], feed[f"v{k}"] = res[f"u{k}_next"], res[f"v{k}_next"]
        for i, p in enumerate(net.projections):
            now = x[:, t] if p.source == "input" else res[f"s{names.index(p.source)}"]
            feed[f"in{i}"] = np.concatenate([now[:, None], feed[f"in{i}"][:, :-1]], axis=1) if line(p) else now
    return Trace(out, {})
