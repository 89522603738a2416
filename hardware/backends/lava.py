"""Run a :class:`hardware.graph.ir.Network` on Lava's CPU simulation of Loihi 2 (``Loihi2SimCfg(select_tag="fixed_pt")``).

One builder for every network: populations are Lava ``LIF`` (``LIFReset`` on the batched path), dense projections
``Dense`` (``DelayDense`` for longer delays), convolutions Lava's ``Conv``, the input and the always-on bias
source ``RingBuffer``s. Spikes are recorded by our memory-mapped ``SpikeRecorder`` (reading Lava ``Var``s back is
element by element and too slow), the voltage of non-spiking readouts by Lava's ``Monitor``.

Two ways to run many samples:

- **batched** (feed-forward, every delay one step, no biases or initial voltages, e.g. every network we train):
  one network runs many samples back to back (building a network costs ~0.4 s). The input ring buffer holds the
  samples one after another, ``n_steps`` columns each, the last of them empty (required: see ``batch_blocker``).
  A population at depth l is a ``LIFReset`` that zeroes u and v at its step l - 1 of each sample, when in the
  model it is still at rest: with zero bias it cannot spike before step l, so its state there is exactly zero.
  Before that reset, at steps 0 .. l - 2 of a sample's window, it still computes the previous sample: those
  steps are returned as the previous sample's steps n_steps .. n_steps + l - 2 (its tail: the model continued
  past its end with no input), and the verification compares them there (``Trace.computed`` says which
  positions of each sample were computed). The first sample of a network starts from rest, so its own first
  steps are computed; the last sample's tail is not (the network stops).
- **side by side** (any network of dense projections the batched path cannot run: recurrence, biases, initial
  voltages, delays, voltage readouts): K copies of the network in one Lava network, block-diagonal weights
  (``hardware/backends/lava_side.py``); no spike of one copy can reach another, so no reset is needed.
- **one network per sample** (what neither can run: a convolution with recurrence, say; and netx, whose network is
  built from its file): no reset scheme.

Layouts: we keep NIR's (C, H, W) order, flattened C-major; Lava's ``Conv`` works in (W, H, C) (x, y, channel),
so a population fed by a convolution is a Lava LIF of shape (W, H, C), and ports are reshaped and transposed
between the two orders. Lava's ``Conv`` model convolves (flips the kernel) in (x, y) and applies no weight
exponent: the kernel goes in flipped and transposed, as ``q << exp`` (``exp >= 0``). Dense weights go in as
``2 q`` with ``weight_exp = e - 1`` and sign mode MIXED: Lava's Dense clips to 9 bits and drops the lowest bit of
mixed-sign weights, which keeps ``2 q`` exact, and the shift by ``e - 1`` restores ``shift(sum q s, e)`` exactly.
"""
from __future__ import annotations

import math
import os
import tempfile

import numpy as np

from hardware.backends import lava_compat, lava_side
from hardware.backends.pool import capped, run_all
from hardware.errors import GraphError
from hardware.graph.ir import Conv, Network
from hardware.judge.trace import Trace, concat


def batch_blocker(net: Network, x: np.ndarray) -> str | None:
    """Why the batched back-to-back path cannot run ``net`` on input ``x`` (B, n_steps, inputs), None when it can.

    ``LIFReset`` clears u and v after it has received the step's input: the first layer, reset at step 0 of a
    sample, still takes in what the previous sample's last input step sent, so that step must be empty (our runs
    pad every sample with ``depth`` empty steps)."""
    n_steps = x.shape[1]
    if x[:, -1].any():
        return "the input's last step is not empty (it would reach the next sample)"
    depth = net.depth
    for p in net.projections:
        if p.source == "bias":
            return f"projection {p.name} brings a bias"
        if np.any(np.asarray(p.delay) != 1):
            return f"projection {p.name} has a delay of more than one step"
        if depth[p.target] != depth.get(p.source, 0) + 1:
            return f"projection {p.name} skips or returns across layers (recurrence)"
    for k, pop in net.populations.items():
        if np.any(pop.bias) or np.any(pop.v0) or not pop.spiking:
            return f"population {k} has a bias, an initial voltage or no spikes (a voltage readout)"
    if n_steps <= max(depth.values()):
        return f"{n_steps} steps per sample do not reach past the network's depth {max(depth.values())}"
    return None


def check_supported(net: Network) -> None:
    for p in net.projections:
        if isinstance(p.synapse, Conv) and p.synapse.exp < 0:
            raise GraphError(f"projection {p.name}: a convolution with weight exponent {p.synapse.exp} < 0; Lava's "
                             "Conv model applies no exponent")
        if isinstance(p.synapse, Conv) and np.ndim(p.delay):
            raise GraphError(f"projection {p.name}: per-synapse delays on a convolution")


def _lava_shape(net: Network, name: str) -> tuple[int, ...]:
    """(W, H, C) for a population fed by a convolution, else (N,)."""
    convs = [p.synapse for p in net.projections if p.target == name and isinstance(p.synapse, Conv)]
    return tuple(convs[0].out_shape[::-1]) if convs else (net.populations[name].size,)


def _to_lava(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-neuron array in our C-major order -> Lava's layout of that population."""
    return a.reshape(shape[::-1]).transpose(2, 1, 0) if len(shape) == 3 else a.reshape(shape)


def _connect(p, shapes: dict, lifs: dict, flat) -> None:
    """Projection ``p`` as a Lava Conv, Dense or DelayDense process between its source's port (``flat``: the
    source's spikes as a flat C-major port) and its target LIF."""
    from lava.proc.conv.process import Conv as LavaConv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.utils.weightutils import SignMode
    syn, target_shape = p.synapse, shapes[p.target]
    if isinstance(syn, Conv):
        kernel = (syn.weight << syn.exp)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
        conn = LavaConv(weight=kernel.astype(np.int32), input_shape=syn.in_shape[::-1],
                        padding=syn.padding[::-1], stride=syn.stride[::-1], dilation=syn.dilation[::-1],
                        groups=syn.groups)
        if p.source in shapes and shapes[p.source] == syn.in_shape[::-1]:
            lifs[p.source].s_out.connect(conn.s_in)
        else:
            flat(p.source).reshape(syn.in_shape).transpose([2, 1, 0]).connect(conn.s_in)
        conn.a_out.connect(lifs[p.target].a_in)
        return
    w = (2 * syn.weight).astype(np.int32)
    if np.all(np.asarray(p.delay) == 1):
        conn = Dense(weights=w, weight_exp=syn.exp - 1, num_message_bits=0, sign_mode=SignMode.MIXED)
    else:
        conn = DelayDense(weights=w, delays=np.broadcast_to(np.asarray(p.delay) - 1, w.shape).astype(int),
                          weight_exp=syn.exp - 1, num_message_bits=0, sign_mode=SignMode.MIXED)
    flat(p.source).connect(conn.s_in)
    out = conn.a_out
    if len(target_shape) == 3:
        out = out.reshape(target_shape[::-1]).transpose([2, 1, 0])
    out.connect(lifs[p.target].a_in)


def _build(net: Network, x: np.ndarray, workdir: str, reset_interval: int | None, monitor: bool):
    """The Lava processes of ``net`` fed with ``x`` (steps, inputs): (source, recorder paths, monitors)."""
    lava_compat.install()
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.monitor.process import Monitor

    from hardware.backends.lava_procs.recorder import SpikeRecorder

    steps = x.shape[0]
    source = RingBuffer(data=x.T.astype(np.int32))
    bias_src = None
    shapes = {k: _lava_shape(net, k) for k in net.populations}
    depth = net.depth
    lifs = {}
    for k, pop in net.populations.items():
        args = dict(shape=shapes[k], du=pop.du, dv=pop.dv, vth=pop.vth, name=k,
                    bias_mant=_to_lava(pop.bias_mant, shapes[k]).astype(np.int32),
                    bias_exp=_to_lava(pop.bias_exp, shapes[k]).astype(np.int32))
        if reset_interval:
            lifs[k] = LIFReset(**args, reset_interval=reset_interval, reset_offset=depth[k] % reset_interval)
        else:
            lifs[k] = LIF(**args, v=_to_lava(pop.v0, shapes[k]).astype(np.int32))

    def flat(src: str):
        """The spikes of a source as a flat (N,) port in C-major order."""
        if src == "input":
            return source.s_out
        if src == "bias":
            return bias_src.s_out
        port = lifs[src].s_out
        return port.transpose([2, 1, 0]).flatten() if len(shapes[src]) == 3 else port

    for p in net.projections:
        if p.source == "bias" and bias_src is None:
            bias_src = RingBuffer(data=np.ones((1, steps), np.int32))
        _connect(p, shapes, lifs, flat)
    paths, monitors = {}, {}
    for k, pop in net.populations.items():
        paths[k] = os.path.join(workdir, f"{len(paths)}.u8")
        np.memmap(paths[k], dtype=np.uint8, mode="w+", shape=(pop.size, steps)).flush()
        rec = SpikeRecorder(shape=(pop.size,), num_steps=steps, path=paths[k])
        flat(k).connect(rec.a_in)
        if monitor and not pop.spiking:
            monitors[k] = Monitor()
            monitors[k].probe(target=lifs[k].v, num_steps=steps)
    return source, paths, monitors, lifs


def _netx(net: Network, x: np.ndarray, workdir: str, netx: str, reset_interval: int):
    """lava-dl's netx builds the network from the file; inputs, resets and recording are ours."""
    lava_compat.install()
    from lava.lib.dl.netx import hdf5
    from lava.proc.io.source import RingBuffer

    from hardware.backends.lava_procs.recorder import SpikeRecorder

    steps = x.shape[0]
    source = RingBuffer(data=x.T.astype(np.int32))
    network = hdf5.Network(net_config=netx, reset_interval=reset_interval, reset_offset=0)
    inp = source.s_out
    if len(network.inp.shape) == 3:
        inp = inp.reshape(net.input_shape).transpose([2, 1, 0])
    inp.connect(network.inp)
    paths = {}
    for (k, pop), block in zip(net.populations.items(), network.layers):
        paths[k] = os.path.join(workdir, f"{len(paths)}.u8")
        np.memmap(paths[k], dtype=np.uint8, mode="w+", shape=(pop.size, steps)).flush()
        rec = SpikeRecorder(shape=(pop.size,), num_steps=steps, path=paths[k])
        out = block.out
        (out.transpose([2, 1, 0]).flatten() if len(out.shape) == 3 else out).connect(rec.a_in)
    return source, paths, {}, {}


MODES = ("back to back", "side by side", "one per sample")


def mode(net: Network, x: np.ndarray) -> tuple[str, str | None]:
    """How Lava runs many samples of ``net``: back to back (feed-forward networks whose samples end quiet), side
    by side (any network of dense projections: recurrence, biases, delays, voltage readouts; ``lava_side.py``),
    or one network per sample; and why not back to back."""
    why = batch_blocker(net, x)
    if why is None:
        return "back to back", None
    return ("side by side" if lava_side.blocker(net) is None else "one per sample"), why


def _run(net: Network, x: np.ndarray, how: str, netx: str | None = None) -> Trace:
    """Spikes (and monitored voltages) of x (K, n, inputs): K samples back to back, side by side, or one."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    K, n, _ = x.shape
    side = how == "side by side"
    steps = n if side else K * n
    with tempfile.TemporaryDirectory(prefix="lava-") as workdir:
        if netx is not None:
            source, paths, monitors, lifs = _netx(net, x.reshape(steps, -1), workdir, netx, n)
        elif side:
            source, paths, monitors, lifs = lava_side.build(net, x, workdir, monitor=True)
        else:
            source, paths, monitors, lifs = _build(net, x.reshape(steps, -1), workdir,
                                                   n if how == "back to back" else None,
                                                   monitor=how == "one per sample")
        volt = {}
        try:
            source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            for k, m in monitors.items():
                data = np.rint(np.asarray(m.get_data()[k]["v"])).astype(np.int64)     # (steps, *lava shape)
                if data.ndim == 4:
                    data = data.transpose(0, 3, 2, 1)
                volt[k] = lava_side.per_sample(data.reshape(n, -1), K) if side else data.reshape(K, n, -1)
        finally:
            source.stop()
        width = K if side else 1
        stream = {k: np.array(np.memmap(paths[k], dtype=np.uint8, mode="r", shape=(width * pop.size, steps))).T
                  for k, pop in net.populations.items()}
    if side:
        return Trace({k: lava_side.per_sample(s, K).astype(bool) for k, s in stream.items()}, volt)
    if how == "one per sample":
        return Trace({k: s.reshape(K, n, -1).astype(bool) for k, s in stream.items()}, volt)
    return untangle(net, stream, K, n)


def untangle(net: Network, stream: dict[str, np.ndarray], K: int, n: int) -> Trace:
    """Per-sample spikes (K, n + depth - 1, N) from a batched run's stream (K n, N) per population: a population
    at depth d spends steps 0 .. d - 2 of each sample's window on the previous sample (its steps n .. n + d - 2).

    ``computed`` marks what was computed for each sample: its own steps from d - 1 (from 0 for the first sample,
    which starts from rest), and the tail steps n .. n + d - 2 for every sample but the last."""
    D = max(net.depth.values())
    spikes, computed = {}, {}
    for k, s in stream.items():
        d = net.depth[k]
        windows = s.reshape(K, n, -1).astype(bool)
        out = np.zeros((K, n + D - 1, windows.shape[2]), bool)
        done = np.zeros((K, n + D - 1), bool)
        out[:, :n] = windows
        done[:, d - 1:n] = True
        done[0, :d - 1] = True                      # the first sample starts from rest
        if d > 1:
            out[1:, :d - 1] = False                 # those steps held the previous sample: moved to its tail
            out[:-1, n:n + d - 1] = windows[1:, :d - 1]
            done[:-1, n:n + d - 1] = True
        spikes[k], computed[k] = out, done
    return Trace(spikes, {}, {}, computed)


def simulate(net: Network, x: np.ndarray, workers: int = 2, chunk: int = 250, timeout_s: float | None = None,
             progress: bool = True, netx: str | None = None, one_per_sample: bool = False) -> Trace:
    """Spikes of every population from real Lava fixed_pt for input spikes ``x`` (B, n_steps, inputs); voltages
    of non-spiking readouts. With ``netx`` (a netx HDF5 file of ``net``), lava-dl's ``hdf5.Network`` builds the
    network from that file instead of our processes; inputs, resets and recording are the same.
    ``one_per_sample``: one network per sample even where a batched scheme could run it (to measure what the
    batched schemes save)."""
    check_supported(net)
    workers = capped(workers)
    how, _ = mode(net, x)
    if (netx is not None and how == "side by side") or one_per_sample:
        how = "one per sample"          # netx builds its network from the file: one copy
    B, n, _ = x.shape
    size = max(1, min(chunk, -(-B // max(1, workers)))) if how != "one per sample" else 1
    starts = range(0, B, size)
    desc = "Lava fixed_pt" + (" (netx)" if netx else "") + ("" if how == "back to back" else f", {how}")
    # the hang guard's time: 20 ms per simulated step for every large projection, times its longest delay (a
    # DelayDense keeps a weight matrix per delay: measured, a dense net with delays up to 16 steps per synapse ran
    # past a guard without this factor on a machine shared with other runs)
    per_step = 0.02 * (1 + sum(p.max_delay for p in net.projections if math.prod(p.synapse.weight.shape[1:]) > 100))
    steps = n if how == "side by side" else size * n
    results = run_all(_run, [(net, x[i:i + size], how, netx) for i in starts], workers,
                      timeout_s or 120 + per_step * steps * (1 + size / 100 if how == "side by side" else 1), desc,
                      [len(x[i:i + size]) for i in starts],
                      [f"samples {i}.." if size > 1 else f"sample {i}" for i in starts], progress)
    return concat(results)
