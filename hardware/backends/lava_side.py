"""Many samples side by side in one Lava network: K copies of a dense network, each fed its own sample.

What the back-to-back path (``hardware/backends/lava.py``) cannot run, a network with recurrence, biases, initial
voltages, per-synapse delays or voltage readouts, still need not cost one Lava network per sample: a network of
dense projections runs K samples at once as K disconnected copies of itself. Every population becomes a Lava
``LIF`` of K N neurons (copy k holds neurons k N .. (k + 1) N - 1; per-neuron biases and initial voltages
repeated), every projection a Lava ``Sparse`` (``DelaySparse`` for per-synapse delays) whose weights are the
block-diagonal matrix of K copies of the projection's, so no spike of one copy can reach another, by
construction. The always-on bias source is one neuron feeding every copy. Lava's ``Sparse`` has the bit-accurate
fixed-point model of ``Dense`` (the same weight clipping and exponent), so the weights go in as ``2 q`` with
``weight_exp = e - 1`` in sign mode MIXED, exactly as for ``Dense``. Lava's per-step cost is paid once for all K.
Convolutions are not copied (Lava's ``Conv`` has no block-diagonal form): such networks stay one per sample.
"""
from __future__ import annotations

import os

import numpy as np
from scipy import sparse

from hardware.backends import lava_compat
from hardware.graph.ir import Conv, Network


def blocker(net: Network) -> str | None:
    """Why ``net`` cannot run side by side (None when it can)."""
    for p in net.projections:
        if isinstance(p.synapse, Conv):
            return f"projection {p.name} is a convolution (Lava's Conv cannot hold copies side by side)"
    return None


def build(net: Network, x: np.ndarray, workdir: str, monitor: bool):
    """The Lava processes of K copies of ``net``, copy k fed ``x[k]`` ((K, steps, inputs)): (source, recorder
    paths, monitors, lifs)."""
    lava_compat.install()
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

    from hardware.backends.lava_procs.recorder import SpikeRecorder

    K, steps, n_in = x.shape
    source = RingBuffer(data=x.transpose(0, 2, 1).reshape(K * n_in, steps).astype(np.int32))
    bias_src = None
    lifs = {k: LIF(shape=(K * pop.size,), du=pop.du, dv=pop.dv, vth=pop.vth, name=k,
                   bias_mant=np.tile(pop.bias_mant, K).astype(np.int32),
                   bias_exp=np.tile(pop.bias_exp, K).astype(np.int32), v=np.tile(pop.v0, K).astype(np.int32))
            for k, pop in net.populations.items()}
    for p in net.projections:
        w = (2 * p.synapse.weight).astype(np.int32)
        if p.source == "bias":
            if bias_src is None:
                bias_src = RingBuffer(data=np.ones((1, steps), np.int32))
            weights, src = sparse.csr_matrix(np.tile(w, (K, 1))), bias_src.s_out      # one source for every copy
        else:
            weights = sparse.block_diag([w] * K, format="csr")
            src = source.s_out if p.source == "input" else lifs[p.source].s_out
        kw = dict(weight_exp=p.synapse.exp - 1, num_message_bits=0, sign_mode=SignMode.MIXED)
        if np.all(np.asarray(p.delay) == 1):
            conn = Sparse(weights=weights, **kw)
        else:
            d = np.broadcast_to(np.asarray(p.delay) - 1, w.shape).astype(int)
            delays = sparse.csr_matrix(np.tile(d, (K, 1)) if p.source == "bias" else sparse.block_diag([d] * K))
            delays = delays.multiply(weights != 0).tocsr()          # a delay only where there is a synapse
            conn = DelaySparse(weights=weights, delays=delays, max_delay=int(np.max(p.delay)), **kw)
        src.connect(conn.s_in)
        conn.a_out.connect(lifs[p.target].a_in)
    paths, monitors = {}, {}
    for k, pop in net.populations.items():
        paths[k] = os.path.join(workdir, f"{len(paths)}.u8")
        np.memmap(paths[k], dtype=np.uint8, mode="w+", shape=(K * pop.size, steps)).flush()
        rec = SpikeRecorder(shape=(K * pop.size,), num_steps=steps, path=paths[k])
        lifs[k].s_out.connect(rec.a_in)
        if monitor and not pop.spiking:
            monitors[k] = Monitor()
            monitors[k].probe(target=lifs[k].v, num_steps=steps)
    return source, paths, monitors, lifs


def per_sample(a: np.ndarray, K: int) -> np.ndarray:
    """(steps, K N) from K copies -> (K, steps, N)."""
    steps = a.shape[0]
    return a.reshape(steps, K, -1).transpose(1, 0, 2)
