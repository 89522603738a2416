"""The backends that run a network, in one registry that run, verify and recheck share.

Each takes the network (``hardware/graph/ir.py``), binary input spikes (B, steps, inputs) and :class:`Options`, and
returns a :class:`hardware.judge.trace.Trace`. ``file`` names what the backend runs from, in ``Options.folder``
(the ONNX step model, the netx HDF5 file); the others run the network itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hardware.graph.ir import Network
from hardware.judge.trace import Trace


@dataclass(frozen=True)
class Options:
    folder: Path | None = None      # where the backends' files lie (model.onnx, model.net)
    workers: int = 2                # parallel Lava simulations
    chunk: int = 250                # samples per Lava network
    progress: bool = True
    one_per_sample: int = 0         # samples run where a Lava backend must build one network per sample (0 = all)


@dataclass(frozen=True)
class Backend:
    name: str
    title: str
    file: str | None                # the file it runs from, in Options.folder
    simulate: Callable[[Network, np.ndarray, Options], Trace]
    lava: bool = False              # runs Lava: one network per sample where no batched scheme can run the network


def samples_run(backend: Backend, net: Network, x: np.ndarray, o: Options) -> tuple[int, str]:
    """How many of the samples ``x`` ``backend`` runs (the first ones), and why not all: a Lava backend that must
    build one network per sample (netx always builds its network from its file, so a network the back-to-back
    path cannot run, e.g. a recurrent one, costs netx a Lava network per sample) runs ``o.one_per_sample``."""
    if not backend.lava or not o.one_per_sample or len(x) <= o.one_per_sample:
        return len(x), ""
    from hardware.backends import lava
    how, why = lava.mode(net, x)
    if backend.name == "netx" and how == "side by side":
        how = "one per sample"
    if how != "one per sample":
        return len(x), ""
    return o.one_per_sample, (f"{backend.name} builds one Lava network per sample for this network ({why}); the "
                              f"first {o.one_per_sample} were run (verify.one_per_sample)")


def _reference(net: Network, x: np.ndarray, o: Options) -> Trace:
    from hardware.backends import reference
    return reference.simulate(net, x)


def _lava(net: Network, x: np.ndarray, o: Options) -> Trace:
    from hardware.backends import lava
    return lava.simulate(net, x, workers=o.workers, chunk=o.chunk, progress=o.progress)


def _onnx(net: Network, x: np.ndarray, o: Options) -> Trace:
    from hardware.backends import onnx
    return onnx.simulate(net, x, o.folder / "model.onnx")


def _netx(net: Network, x: np.ndarray, o: Options) -> Trace:
    from hardware.backends import lava
    return lava.simulate(net, x, workers=o.workers, chunk=o.chunk, progress=o.progress,
                         netx=str(o.folder / "model.net"))


BACKENDS: dict[str, Backend] = {
    "reference": Backend("reference", "integer reference (numpy int64)", None, _reference),
    "lava": Backend("lava", "Lava fixed_pt (Loihi2SimCfg), our processes", None, _lava, lava=True),
    "onnx": Backend("onnx", "onnxruntime, integer step model (model.onnx)", "model.onnx", _onnx),
    "netx": Backend("netx", "Lava fixed_pt, network built by lava-dl netx from model.net", "model.net", _netx,
                    lava=True),
}
