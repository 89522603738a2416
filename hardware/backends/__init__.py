"""The backends that run a network, in one registry that run, verify and recheck share.

Each takes the network (``hardware/ir.py``), binary input spikes (B, steps, inputs) and :class:`Options`, and
returns a :class:`hardware.trace.Trace`. ``file`` names what the backend runs from, in ``Options.folder``
(the ONNX step model, the netx HDF5 file); the others run the network itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hardware.ir import Network
from hardware.trace import Trace


@dataclass(frozen=True)
class Options:
    folder: Path | None = None      # where the backends' files lie (model.onnx, model.net)
    workers: int = 2                # parallel Lava simulations
    chunk: int = 250                # samples per Lava network
    progress: bool = True


@dataclass(frozen=True)
class Backend:
    name: str
    title: str
    file: str | None                # the file it runs from, in Options.folder
    simulate: Callable[[Network, np.ndarray, Options], Trace]


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
    "lava": Backend("lava", "Lava fixed_pt (Loihi2SimCfg), our processes", None, _lava),
    "onnx": Backend("onnx", "onnxruntime, integer step model (model.onnx)", "model.onnx", _onnx),
    "netx": Backend("netx", "Lava fixed_pt, network built by lava-dl netx from model.net", "model.net", _netx),
}
