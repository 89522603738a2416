"""A network of ours as a lava-dl netx HDF5 file (``model.net``), the format Loihi teams load with
``lava.lib.dl.netx.hdf5.Network``.

Layout written (read by netx's ``NetDict``): ``layer/0`` the input (``type = input``, ``shape`` (C, H, W), which
netx reverses to its (x, y, channel) order), then per layer ``layer/<i>``:

- ``type = conv``: ``shape`` (C, H, W), ``weight`` (C_out, C_in, kh, kw) as PyTorch stores a kernel, ``stride``,
  ``padding``, ``dilation`` (h, w), ``groups``. netx flips the kernel and transposes it to Lava's
  (C_out, x, y, C_in) (``create_conv``: ``weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``), which is what our own
  Lava builder does; the equivalence check runs the file in Lava against the reference, and with square kernels a
  transposed kernel (lava-dl issue 260) would show as diverging spikes. netx applies no weight exponent to a
  convolution: the file stores ``q << e`` (``e >= 0``).
- ``type = flatten`` before the first dense layer after a convolution (netx flattens (x, y, c) back to C-major).
- ``type = dense``: ``shape = [N_out]``, ``weight`` (N_out, N_in) integers. netx re-derives a dense layer's weight
  exponent itself (``optimize_weight_bits``: it scales the stored integers into Loihi's 8-bit mantissas and returns
  the exponent that undoes the scaling), so the file stores ``q << e``; exact when they fit Loihi's synapse (at
  most 254 and at least -256 with mixed signs) and ``e >= 0``.
- ``type = dense_rec`` for a recurrent layer: ``weight`` as for ``dense`` and ``weight_rec`` (N_out, N_out), the
  layer's own spikes of the step before; netx derives one exponent for both (from the two concatenated), so both
  are stored as ``q << e`` with the layer's one exponent, and builds ``RecurrentDense`` (a second synapse from the
  neuron back to itself).
- ``delay`` on a ``dense`` layer with trained delays: the steps after the synapse's own one, per input (N_in,)
  when every output sees one delay per input, else per synapse (N_out, N_in); netx then builds ``DelayDense``. A
  square layer's are always stored per synapse: netx reads a vector of N_out delays as one per output first.
  A recurrent or conv layer with delays is refused (netx 0.6.0 runs neither as written).
- ``neuron``: ``type = CUBA``, ``iDecay = du + 1`` (netx subtracts one), ``vDecay = dv``, ``vThMant = vth``,
  ``refDelay = 1``. netx sets ``bias_exp = 6``: a nonzero bias must be a multiple of 64.

Layers that cannot be written exactly are refused, naming the limit.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from export.files import atomic_write
from hardware.errors import GraphError
from hardware.graph.ir import Conv, Network


def _chain(net: Network) -> list[tuple]:
    """(projection from the layer before, recurrent projection or None) per layer, in layer order (netx networks
    are chains; a ``dense_rec`` layer also feeds itself)."""
    prev, chain = "input", []
    for name in net.populations:
        incoming = [p for p in net.projections if p.target == name]
        if any(p.source == "bias" for p in incoming):
            raise GraphError(f"layer {name}: a bias on its synapses (an Affine or convolution bias, which reaches "
                             "the current u); netx's layers have a neuron bias on v only")
        feed = [p for p in incoming if p.source != name]
        rec = [p for p in incoming if p.source == name]
        if len(feed) != 1 or feed[0].source != prev or any(p.max_delay != 1 for p in rec):
            raise GraphError(f"layer {name}: netx stores chains of layers, each fed by the one before (and by "
                             "itself, for a recurrent layer, with a one-step delay)")
        if feed[0].max_delay != 1 and (rec or isinstance(feed[0].synapse, Conv)):
            # lava-dl 0.6.0 netx/blocks/process.py: RecurrentDense gives its recurrent synapse the input's delays
            # and drops the weight exponent; a conv layer's delays are not read at all
            raise GraphError(f"layer {name}: delays on a {'recurrent' if rec else 'convolutional'} layer, which "
                             "lava-dl netx 0.6.0 does not run as written (delays on dense layers only)")
        if rec and (isinstance(feed[0].synapse, Conv) or isinstance(rec[0].synapse, Conv)):
            raise GraphError(f"layer {name}: a convolution with recurrence; netx's recurrent layer is dense_rec")
        if rec and rec[0].synapse.exp != feed[0].synapse.exp:
            raise WeightRangeError(f"layer {name}: recurrent weight_exp {rec[0].synapse.exp} differs from the "
                                   f"input's {feed[0].synapse.exp}; netx's dense_rec has one exponent for both")
        chain.append((feed[0], rec[0] if rec else None))
        prev = name
    return chain


class WeightRangeError(GraphError):
    """A layer's weights need an exponent netx cannot store (verify --netx quantises so that they fit)."""


def check_exportable(net: Network) -> None:
    for p, rec in _chain(net):
        name, syn, pop = p.target, p.synapse, net.populations[p.target]
        if syn.exp < 0:
            raise WeightRangeError(f"layer {name}: weight_exp {syn.exp} < 0 cannot be stored in netx, whose "
                             "weights are integers and whose exponent netx derives itself")
        w = np.concatenate([(s.weight.astype(np.int64) << s.exp).ravel() for s in
                            (syn,) + ((rec.synapse,) if rec else ())])
        if not isinstance(syn, Conv) and not w.any():
            raise GraphError(f"layer {name}: every weight is zero; lava-dl netx cannot load such a dense layer (its "
                             "optimize_weight_bits divides by the largest weight)")
        if not isinstance(syn, Conv) and (w.max(initial=0) > 254 or w.min(initial=0) < -256):
            raise WeightRangeError(f"layer {name}: effective weights q << {syn.exp} span [{w.min()}, {w.max()}], "
                             "outside netx's synapse range [-256, 254]")
        if not pop.spiking:
            raise GraphError(f"layer {name}: a non-spiking readout ({pop.kind}, its voltage is the output); a netx "
                             "network's layers output spikes only")
        if np.any(pop.v0):
            raise GraphError(f"layer {name}: initial voltage {int(pop.v0.ravel()[0])} (from v_reset != 0); netx "
                             "starts every neuron at 0")
        if np.any(pop.bias % 64) or np.any(pop.bias != pop.bias[0]):
            raise GraphError(f"layer {name}: bias {pop.bias.ravel()[0]} is not one multiple of 64 (netx fixes "
                             "bias_exp = 6)")


def write(net: Network, path: Path) -> None:
    """Write ``net`` as a netx HDF5 file, atomically."""
    check_exportable(net)

    def write_h5(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            layer = f.create_group("layer")
            inp = layer.create_group("0")
            inp.create_dataset("type", data=np.bytes_("input"))
            inp.create_dataset("shape", data=np.array(net.input_shape))
            i, after_conv = 1, False
            for p, rec in _chain(net):
                syn, pop = p.synapse, net.populations[p.target]
                w = (syn.weight.astype(np.int64) << syn.exp).astype(np.int32)
                if not isinstance(syn, Conv) and after_conv:
                    layer.create_group(str(i)).create_dataset("type", data=np.bytes_("flatten"))
                    i, after_conv = i + 1, False
                g = layer.create_group(str(i))
                if isinstance(syn, Conv):
                    g.create_dataset("type", data=np.bytes_("conv"))
                    g.create_dataset("shape", data=np.array(syn.out_shape))
                    g.create_dataset("weight", data=w)
                    for key in ("stride", "padding", "dilation"):
                        g.create_dataset(key, data=np.array(getattr(syn, key)))
                    g.create_dataset("groups", data=syn.groups)
                    after_conv = True
                else:
                    g.create_dataset("type", data=np.bytes_("dense_rec" if rec else "dense"))
                    g.create_dataset("shape", data=np.array([pop.size]))
                    g.create_dataset("weight", data=w)
                    if p.max_delay > 1:          # netx's delay: steps after the synapse's own one
                        d = np.broadcast_to(np.asarray(p.delay) - 1, syn.weight.shape)
                        # one per input only where netx cannot take it for one per output (its test comes first)
                        per_input = np.all(d == d[:1]) and d.shape[0] != d.shape[1]
                        g.create_dataset("delay", data=(d[0] if per_input else d).astype(np.int32))
                    if rec:
                        g.create_dataset("weight_rec", data=(rec.synapse.weight.astype(np.int64)
                                                             << rec.synapse.exp).astype(np.int32))
                if np.any(pop.bias):
                    g.create_dataset("bias", data=np.full(pop.size, int(pop.bias[0]) >> 6, np.int32))
                n = g.create_group("neuron")
                n.create_dataset("type", data=np.bytes_("CUBA"))
                for key, value in (("iDecay", pop.du + 1), ("vDecay", pop.dv), ("vThMant", pop.vth), ("refDelay", 1)):
                    n.create_dataset(key, data=value)
                i += 1
            f.attrs["producer"] = "nmpipe"
            f.attrs["n_bins"], f.attrs["n_steps"], f.attrs["dt"] = net.n_bins, net.n_steps, net.dt
    atomic_write(path, write_h5)
