"""verify's input spikes: a .npy/.npz file, NIR's recorded-data containers, or random spikes."""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from hardware import h5safe
from hardware.errors import GraphError
from hardware.graph.ir import Network
from pipeline.commands.task import MAX_WORDS


def load_input(path, net: Network, samples: int, steps: int | None, rate: float,
               seed: int) -> tuple[np.ndarray, str]:
    """(B, n_steps, inputs) binary spikes: from a .npy/.npz file, from NIR's recorded-data containers
    (``nir.TimeGriddedData``; ``nir.EventData`` is gridded at the net's dt), or Bernoulli(rate) when none is given."""
    n_in = net.input_size
    x, described = _read_input(path, net, n_in, samples, steps, rate, seed)
    if steps and steps > x.shape[1]:
        x = np.concatenate([x, np.zeros((x.shape[0], steps - x.shape[1], n_in), np.int64)], axis=1)
    return x, described


def _read_input(path, net: Network, n_in: int, samples: int, steps: int | None, rate: float, seed: int):
    if isinstance(path, (nir.EventData, nir.TimeGriddedData)):
        grid = path.to_time_gridded(net.dt) if isinstance(path, nir.EventData) else path
        if abs(grid.dt - net.dt) > 1e-12 * net.dt:
            raise GraphError(f"recorded data has dt {grid.dt:g}; the graph is discretised at {net.dt:g}")
        data = np.asarray(grid.data)
        if data.ndim != 3 or data.shape[2] != n_in:
            raise GraphError(f"recorded data of shape {data.shape}: expected (samples, steps, {n_in})")
        return _binary(data, "recorded data"), f"NIR {type(path).__name__}: {data.shape[0]} samples x " \
                                               f"{data.shape[1]} steps"
    if path is None:
        T = steps or 20
        x = np.random.default_rng(seed).random((samples, T, n_in)) < rate
        return x.astype(np.int64), f"random spikes: {samples} samples x {T} steps, rate {rate}, seed {seed}"
    h5safe.regular_file(Path(path), ".npy/.npz input")
    if (size := Path(path).stat().st_size) > 8 * MAX_WORDS:
        raise GraphError(f"{path}: {size:,} bytes; an input of at most {8 * MAX_WORDS:,} bytes fits this "
                         "verification's memory")
    try:
        data = np.load(path, allow_pickle=False)         # never unpickle a file
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if "input" not in data.files:
                    raise GraphError(f"{path}: an .npz input needs an array named 'input' (it holds "
                                     f"{', '.join(map(repr, data.files)) or 'no arrays'})")
                data = data["input"]
    except GraphError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise GraphError(f"{path}: not a readable .npy/.npz input ({' '.join(str(e).split())})") from None
    data = np.asarray(data)
    if data.size == 0:
        raise GraphError(f"{path}: shape {data.shape} holds no spikes (empty)")
    if data.shape[data.ndim - len(net.input_shape):] == net.input_shape:
        lead = data.shape[:data.ndim - len(net.input_shape)]
    elif data.ndim >= 2 and data.shape[-1] == n_in:
        lead = data.shape[:-1]
    else:
        raise GraphError(f"{path}: shape {data.shape} does not end in the graph's input shape {net.input_shape}")
    if len(lead) == 1:
        data, lead = data[None], (1,) + lead
    if len(lead) != 2:
        raise GraphError(f"{path}: shape {data.shape}: expected (T, {net.input_shape}) or (B, T, ...)")
    return _binary(data.reshape(lead[0], lead[1], n_in), str(path)), f"{path}: {lead[0]} samples x {lead[1]} steps"


def _binary(data: np.ndarray, what: str) -> np.ndarray:
    """Spikes as int64 0/1; anything else (0.5, -1, NaN, counts) is refused, never silently binarised."""
    if data.dtype.kind not in "biuf":
        raise GraphError(f"{what}: {data.dtype} values; input spikes are 0 and 1")
    bad = (data != 0) & (data != 1)
    if bad.any():
        raise GraphError(f"{what}: holds {int(bad.sum())} values other than 0 and 1 (e.g. {data[bad].flat[0]!r}); "
                         "input spikes are 0 and 1")
    return data.astype(np.int64)
