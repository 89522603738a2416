"""Run a :class:`hardware.foreign.Net` (any topology) on Lava's bit-accurate CPU simulation of Loihi 2.

One Lava network per sample, built fresh, so no reset scheme is needed: foreign graphs may have biases, initial
voltages, recurrence and delays, which the batched runner in ``hardware/lava_backend.py`` cannot reset between
samples. Populations are Lava ``LIF`` processes, projections ``Dense`` (one-step synapses) or ``DelayDense``
(longer delays), the input and the always-on bias source are ``RingBuffer`` sources. Spikes are recorded by our
memory-mapped ``SpikeRecorder``; the voltage of non-spiking readouts (LI, I, CubaLI) by Lava's ``Monitor``.
Weights go in as ``2 q`` with ``weight_exp = e - 1`` and sign mode MIXED, as in ``lava_backend``.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from hardware import lava_compat
from hardware.foreign import Net
from hardware.netsim import Trace
from hardware.workers import run_all


def _run_one(net: Net, x: np.ndarray) -> tuple[dict, dict]:
    """Spikes and monitored voltages of one sample x (n_steps, inputs)."""
    lava_compat.install()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense, DelayDense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode

    from hardware.lava_procs.recorder import SpikeRecorder

    n = x.shape[0]
    with tempfile.TemporaryDirectory(prefix="lava-net-") as workdir:
        source = RingBuffer(data=x.T.astype(np.int32))
        bias_src = None
        lifs, paths, monitors = {}, {}, {}
        for name, p in net.populations.items():
            lifs[name] = LIF(shape=(p.size,), du=p.du, dv=p.dv, vth=p.vth, bias_mant=p.bias_mant.astype(np.int32),
                             bias_exp=p.bias_exp.astype(np.int32), v=p.v0.astype(np.int32), name=name)
        for proj in net.projections:
            if proj.source == "bias" and bias_src is None:
                bias_src = RingBuffer(data=np.ones((1, n), np.int32))
            port = (source.s_out if proj.source == "input" else bias_src.s_out if proj.source == "bias"
                    else lifs[proj.source].s_out)
            w = (2 * proj.q).astype(np.int32)
            if np.all(proj.delay == 1):
                conn = Dense(weights=w, weight_exp=proj.exp - 1, num_message_bits=0, sign_mode=SignMode.MIXED)
            else:
                conn = DelayDense(weights=w, delays=(proj.delay - 1).astype(int), weight_exp=proj.exp - 1,
                                  num_message_bits=0, sign_mode=SignMode.MIXED)
            port.connect(conn.s_in)
            conn.a_out.connect(lifs[proj.target].a_in)
        for name, p in net.populations.items():
            paths[name] = os.path.join(workdir, f"{name}.u8")
            np.memmap(paths[name], dtype=np.uint8, mode="w+", shape=(p.size, n)).flush()
            rec = SpikeRecorder(shape=(p.size,), num_steps=n, path=paths[name])
            lifs[name].s_out.connect(rec.a_in)
            if not p.spiking:
                monitors[name] = Monitor()
                monitors[name].probe(target=lifs[name].v, num_steps=n)
        volt = {}
        try:
            source.run(condition=RunSteps(num_steps=n), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            for name, m in monitors.items():
                data = m.get_data()[lifs[name].name]["v"]
                volt[name] = np.rint(np.asarray(data)).astype(np.int64).reshape(n, -1)
        finally:
            source.stop()
        spikes = {name: np.array(np.memmap(paths[name], dtype=np.uint8, mode="r",
                                           shape=(p.size, n))).T.astype(bool)
                  for name, p in net.populations.items()}
    return spikes, volt


def simulate(net: Net, x: np.ndarray, workers: int = 1, timeout_s: float | None = None,
             progress: bool = True) -> Trace:
    """Run every sample of ``x`` (B, n_steps, inputs) in its own Lava network, ``workers`` at a time."""
    B, n, _ = x.shape
    results = run_all(_run_one, [(net, x[b]) for b in range(B)], workers, timeout_s or 120 + 0.05 * n,
                      "Lava fixed_pt", [1] * B, [f"sample {b}" for b in range(B)], progress)
    spikes = {k: np.stack([r[0][k] for r in results]) for k in net.populations}
    volt = {k: np.stack([r[1][k] for r in results]) for k, p in net.populations.items() if not p.spiking}
    return Trace(spikes, volt)
