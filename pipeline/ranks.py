"""torchrun ranks: who this process is, and verification shared across ranks.

Under ``torchrun`` (a torch.distributed process group, gloo on CPU), training splits every batch across the
ranks (``pipeline/train/loop.py``), and verification splits the samples: rank 0 sends the other ranks the
network, the input spikes, the files the backends run from and the backends' names (:class:`Sharing`); every
rank simulates a contiguous share of the samples on each backend in turn, and rank 0 gathers the traces in
sample order and compares them (``hardware/judge/equivalence.py``). Within one machine each rank still runs its own
Lava worker processes (``hardware/backends/pool.py``). An error on any rank is raised on every rank, so that
none waits for a share that never comes.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from torch import distributed as dist

from hardware.backends import BACKENDS, Backend, Options, samples_run
from hardware.graph.ir import Network
from hardware.judge.trace import Trace, concat


def rank_world() -> tuple[int, int]:
    """(rank, world size) of a torch.distributed run (torchrun), or (0, 1)."""
    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def gather(obj) -> list:
    """Every rank's ``obj``, in rank order (the object itself when not distributed)."""
    if rank_world()[1] == 1:
        return [obj]
    out = [None] * rank_world()[1]
    dist.all_gather_object(out, obj)
    return out


def bounds(n: int, world: int) -> list[tuple[int, int]]:
    """Contiguous shares of n samples, as even as possible, in rank order."""
    edges = np.linspace(0, n, world + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _share(simulate: Callable[[np.ndarray], Trace], x: np.ndarray) -> list | None:
    """Simulate this rank's share; rank 0 gets every rank's (status, trace), the others None."""
    rank, world = rank_world()
    lo, hi = bounds(len(x), world)[rank]
    try:
        part = ("ok", simulate(x[lo:hi]) if hi > lo else None)
    except Exception as e:        # every rank must reach the gather, whatever went wrong on this one
        part = ("error", e)
    parts = [None] * world if rank == 0 else None
    dist.gather_object(part, parts, dst=0)
    errors = [next((p[1] for p in parts if p[0] == "error"), None) if rank == 0 else None]
    dist.broadcast_object_list(errors, src=0)
    if errors[0] is not None:
        raise errors[0]
    return parts


def gathered(simulate: Callable[[np.ndarray], Trace], x: np.ndarray) -> Trace:
    """Rank 0: ``simulate(x)`` with the samples split across the ranks, the whole trace gathered here (without
    torchrun: ``simulate(x)``)."""
    if rank_world()[1] == 1:
        return simulate(x)
    return concat([p[1] for p in _share(simulate, x) if p[1] is not None])


def contribute(simulate: Callable[[np.ndarray], Trace], x: np.ndarray) -> None:
    """A rank other than 0: simulate this rank's share for rank 0's :func:`gathered`."""
    _share(simulate, x)


class Sharing:
    """Rank 0's side of a shared verification, as a context manager: :meth:`send` gives the other ranks what they
    simulate; leaving without having sent (an error before verification) releases them with nothing to do."""

    def __init__(self) -> None:
        self.sent = False

    def __enter__(self) -> "Sharing":
        return self

    def send(self, net: Network, x: np.ndarray, folder: Path, names: list[str], options: Options) -> None:
        if rank_world()[1] > 1:
            files = {BACKENDS[b].file: (folder / BACKENDS[b].file).read_bytes() for b in names if BACKENDS[b].file}
            # spikes are 0 and 1: sent as uint8, 8 times less than int64
            dist.broadcast_object_list([(net, x.astype(np.uint8), files, names, options)], src=0)
        self.sent = True

    def simulate(self, net: Network, options: Options) -> Callable[[Backend, np.ndarray], Trace]:
        """For ``hardware.judge.equivalence.verify``: each backend run with the samples shared across the ranks."""
        return lambda backend, x: gathered(lambda part: backend.simulate(net, part, options), x)

    def __exit__(self, *exc) -> None:
        if not self.sent and rank_world()[1] > 1:
            dist.broadcast_object_list([None], src=0)


def serve() -> None:
    """A rank other than 0: simulate its shares of what rank 0 sends (nothing when rank 0 sends None)."""
    box = [None]
    dist.broadcast_object_list(box, src=0)
    if box[0] is None:
        return
    net, x, files, names, options = box[0]
    x = x.astype(np.int64)
    with tempfile.TemporaryDirectory(prefix="rank-share-") as tmp:
        for name, data in files.items():       # model.onnx / model.net, as rank 0 wrote them
            (Path(tmp) / name).write_bytes(data)
        opts = Options(Path(tmp), options.workers, options.chunk, False, options.one_per_sample)
        for name in names:
            m, _ = samples_run(BACKENDS[name], net, x, opts)        # the samples rank 0 runs it on
            contribute(lambda part: BACKENDS[name].simulate(net, part, opts), x[:m])  # noqa: B023
