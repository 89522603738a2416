"""Verification across torchrun ranks: every rank simulates a contiguous share of the samples, rank 0 gathers.

Under ``torchrun`` (a torch.distributed process group, gloo on CPU), :func:`shared` splits the samples of one
backend run across the ranks and gathers the traces on rank 0 over torch.distributed, in sample order; every
rank must call it in the same order with the same input. Within one machine each rank still runs its own
worker processes (``hardware/backends/pool.py``). An error on any rank is raised on every rank, so that none
waits for a share that never comes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hardware.backends.reference import Trace


def rank_world() -> tuple[int, int]:
    from pipeline.train import rank_world as rw
    return rw()


def bounds(n: int, world: int) -> list[tuple[int, int]]:
    """Contiguous shares of n samples, as even as possible, in rank order."""
    edges = np.linspace(0, n, world + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def concat(parts: list[Trace]) -> Trace:
    return Trace({k: np.concatenate([p.spikes[k] for p in parts]) for k in parts[0].spikes},
                 {k: np.concatenate([p.voltage[k] for p in parts]) for k in parts[0].voltage},
                 {k: max(p.peak.get(k, -np.inf) for p in parts) for k in parts[0].peak})


def shared(simulate: Callable[[np.ndarray], Trace], x: np.ndarray) -> Trace | None:
    """``simulate(x)`` with the samples split across torchrun ranks: the whole trace on rank 0, None elsewhere
    (without torchrun: ``simulate(x)``)."""
    rank, world = rank_world()
    if world == 1:
        return simulate(x)
    import torch.distributed as dist
    lo, hi = bounds(len(x), world)[rank]
    try:
        part = ("ok", simulate(x[lo:hi]) if hi > lo else None)
    except Exception as e:        # every rank must reach the gather, whatever went wrong on this one
        part = ("error", e)
    parts = [None] * world if rank == 0 else None
    dist.gather_object(part, parts, dst=0)
    errors = [None]
    if rank == 0:
        errors = [next((p[1] for p in parts if p[0] == "error"), None)]
    dist.broadcast_object_list(errors, src=0)
    if errors[0] is not None:
        raise errors[0]
    if rank != 0:
        return None
    return concat([p[1] for p in parts if p[1] is not None])


# --- run's verification: rank 0 exports the network and sends what the other ranks need, once ------------------

_sent = False


def send(payload) -> None:
    """Rank 0: give the other ranks what they simulate from (None: nothing, stop)."""
    global _sent
    rank, world = rank_world()
    if world == 1 or rank != 0 or _sent:
        return
    import torch.distributed as dist
    dist.broadcast_object_list([payload], src=0)
    _sent = payload is not None


def release() -> None:
    """Rank 0, when it ends without having sent a payload (an error before verification): let the others go."""
    global _sent
    if not _sent:
        send(None)
    _sent = False


def receive():
    """The other ranks: rank 0's payload (None: there is no verification to share)."""
    import torch.distributed as dist
    box = [None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
