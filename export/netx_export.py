"""The NIR graph's layer chain as a lava-dl netx HDF5 file (``model.net``), the format Loihi teams load with
``lava.lib.dl.netx.hdf5.Network``.

Layout written (read by netx's ``NetDict``): ``layer/0`` the input (``type = input``, ``shape`` in netx's
reversed x, y, channel order), then per layer ``layer/<i>``: ``type = dense``, ``shape = [N_out]``, ``weight``
(N_out, N_in) integers, ``neuron``: ``type = CUBA``, ``iDecay = du + 1`` (netx subtracts one), ``vDecay = dv``,
``vThMant = vth``, ``refDelay = 1``. netx re-derives each layer's weight exponent itself
(``optimize_weight_bits``: it scales the stored integers into Loihi's 8-bit mantissas and returns the exponent
that undoes the scaling), so the file stores the effective integer weights ``q << e``; that is exact when they
fit Loihi's synapse (at most 254 and at least -256 with mixed signs) and ``e >= 0``. netx sets ``bias_exp = 6``:
a nonzero bias must be a multiple of 64. Layers that cannot be written exactly are refused, naming the limit.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from hardware.graph import Chain, GraphError
from pipeline.runfolder import atomic_write


def check_exportable(chain: Chain) -> None:
    for L in chain.layers:
        if L.weight_exp < 0:
            raise GraphError(f"layer {L.name}: weight_exp {L.weight_exp} < 0 cannot be stored in netx, whose "
                             "weights are integers and whose exponent netx derives itself")
        w = L.weight.astype(np.int64) << L.weight_exp
        if w.max(initial=0) > 254 or w.min(initial=0) < -256:
            raise GraphError(f"layer {L.name}: effective weights q << {L.weight_exp} span [{w.min()}, {w.max()}], "
                             "outside netx's synapse range [-256, 254]")
        if L.bias % 64:
            raise GraphError(f"layer {L.name}: bias {L.bias} is not a multiple of 64 (netx fixes bias_exp = 6)")


def write(chain: Chain, path: Path) -> None:
    """Write ``chain`` as a netx HDF5 file, atomically."""
    check_exportable(chain)

    def write_h5(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            layer = f.create_group("layer")
            inp = layer.create_group("0")
            inp.create_dataset("type", data=np.bytes_("input"))
            inp.create_dataset("shape", data=np.array(chain.input_shape[::-1]))
            for i, L in enumerate(chain.layers, start=1):
                g = layer.create_group(str(i))
                g.create_dataset("type", data=np.bytes_("dense"))
                g.create_dataset("shape", data=np.array([L.weight.shape[0]]))
                g.create_dataset("weight", data=(L.weight.astype(np.int64) << L.weight_exp).astype(np.int32))
                if L.bias:
                    g.create_dataset("bias", data=np.full(L.weight.shape[0], L.bias >> 6, np.int32))
                n = g.create_group("neuron")
                n.create_dataset("type", data=np.bytes_("CUBA"))
                for key, value in (("iDecay", L.du + 1), ("vDecay", L.dv), ("vThMant", L.vth), ("refDelay", 1)):
                    n.create_dataset(key, data=value)
            f.attrs["producer"] = "nmpipe"
            f.attrs["n_bins"], f.attrs["n_steps"], f.attrs["dt"] = chain.n_bins, chain.n_steps, chain.dt
    atomic_write(path, write_h5)
