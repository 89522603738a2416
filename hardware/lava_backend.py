"""Run a NIR layer chain on Lava's CPU simulation of Loihi 2 (``Loihi2SimCfg(select_tag="fixed_pt")``).

One Lava network runs many samples back to back (building a network costs ~0.4 s): the input ring buffer holds
the samples one after another, ``n_steps`` columns each, the last of them empty. Lava's step tau (1-based) runs
model step t of sample k at tau = k * n_steps + t + 1 in every layer (the source sends column tau - 1, and each
Dense adds the one-step delay the model already has). Layer l (1-based) is a ``LIFReset`` that zeroes u and v at
tau = l (mod n_steps), i.e. at its step l - 1, when in the model it is still at rest: with zero bias, layer l
cannot spike before step l, so its state there is exactly zero. The resets are staggered by depth so that
each layer is cleared just as the new sample's first spikes reach it; what a layer records before its reset
(the previous sample's tail) is not part of any sample and is reported as zeros. Chunks of samples (at least
one per worker) run in parallel worker processes (``hardware/workers.py``), each with its own network.

Weights go in as ``2 q`` with ``weight_exp = e - 1`` and sign mode MIXED: Lava's Dense clips to 9 bits and
drops the lowest bit of mixed-sign weights, which keeps ``2 q`` exact, and the shift by ``e - 1`` restores
``shift(sum q s, e)`` exactly.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from hardware import lava_compat
from hardware.graph import Chain, GraphError, input_spikes
from hardware.workers import LavaError, run_all  # noqa: F401  (LavaError: the CLI catches it from here)


def _build_and_run(chain: Chain, x: np.ndarray, workdir: str, netx: str | None = None) -> list[np.ndarray]:
    lava_compat.install()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset
    from lava.utils.weightutils import SignMode

    from hardware.lava_procs.recorder import SpikeRecorder

    K, n, _ = x.shape
    steps = K * n
    source = RingBuffer(data=x.reshape(K * n, -1).T.astype(np.int32))
    port, paths, outs = source.s_out, [], []
    if netx is not None:
        # lava-dl builds the network from the file; its reset offsets count from 1 per layer, as ours do
        from lava.lib.dl.netx import hdf5
        net = hdf5.Network(net_config=netx, reset_interval=n, reset_offset=0)
        source.s_out.connect(net.inp)
        outs = [block.out for block in net.layers]
    for l, layer in enumerate(chain.layers, start=1):
        if netx is None:
            dense = Dense(weights=(2 * layer.weight).astype(np.int32), weight_exp=layer.weight_exp - 1,
                          num_message_bits=0, sign_mode=SignMode.MIXED)
            lif = LIFReset(shape=(layer.weight.shape[0],), du=layer.du, dv=layer.dv, vth=layer.vth,
                           bias_mant=layer.bias, bias_exp=0, reset_interval=n, reset_offset=l % n)
            port.connect(dense.s_in)
            dense.a_out.connect(lif.a_in)
            port = lif.s_out
            outs.append(lif.s_out)
        path = os.path.join(workdir, f"layer{l}.u8")
        np.memmap(path, dtype=np.uint8, mode="w+", shape=(layer.weight.shape[0], steps)).flush()
        rec = SpikeRecorder(shape=(layer.weight.shape[0],), num_steps=steps, path=path)
        outs[l - 1].connect(rec.a_in)
        paths.append(path)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    finally:
        source.stop()
    out = []
    for l, path in enumerate(paths, start=1):
        rec = np.memmap(path, dtype=np.uint8, mode="r", shape=(chain.layers[l - 1].weight.shape[0], steps))
        s = np.array(rec).T.reshape(K, n, -1).astype(bool)
        s[:, : l - 1] = False       # before this layer's reset: the previous sample's tail, not this sample
        out.append(s)
    return out


def _run_chunk(chain: Chain, x: np.ndarray, netx: str | None = None) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="lava-") as workdir:
        return _build_and_run(chain, x, workdir, netx)


def check_supported(chain: Chain) -> None:
    for layer in chain.layers:
        if layer.bias != 0:
            raise GraphError(f"layer {layer.name}: bias {layer.bias} != 0; the batched Lava runner relies on "
                             "silent layers at rest to reset between samples")
    if chain.n_steps <= len(chain.layers):
        raise GraphError(f"n_steps {chain.n_steps} must exceed the depth {len(chain.layers)}")


def simulate(chain: Chain, frames: np.ndarray, workers: int = 2, chunk: int = 250,
             timeout_s: float | None = None, progress: bool = True, netx: str | None = None) -> list[np.ndarray]:
    """Spikes of every layer from real Lava fixed_pt, each (B, n_steps, N_l) bool, for frames (B, T, ...).

    With ``netx`` (a netx HDF5 file of this chain), lava-dl's ``hdf5.Network`` builds the network from that
    file instead of our own Dense + LIFReset processes; inputs, resets and recording are the same."""
    check_supported(chain)
    x = input_spikes(chain, frames)
    size = max(1, min(chunk, -(-len(x) // max(1, workers))))     # at least one chunk per worker
    starts = range(0, len(x), size)
    results = run_all(_run_chunk, [(chain, x[i:i + size], netx) for i in starts], workers,
                      timeout_s or 120 + 0.02 * size * chain.n_steps, "Lava fixed_pt" + (" (netx)" if netx else ""),
                      [len(x[i:i + size]) for i in starts], [f"samples {i}.." for i in starts], progress)
    return [np.concatenate([r[l] for r in results]) for l in range(len(chain.layers))]
