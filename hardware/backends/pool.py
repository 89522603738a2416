"""The worker processes that run Lava, for every backend that runs it (``lava_backend``, ``lava_net``).

Workers fork from a forkserver that has Lava loaded (``hardware/backends/lava_preload.py``): a clean process (no torch
threads, no caller state), started once per program, from which each worker starts in milliseconds. Each worker
leads its own process group, which the Lava processes it forks join, so that a hung run is ended whole: one
``killpg`` per worker. With several workers, worker k is pinned to CPU k (the Lava processes inherit it).

A worker also ends, with its whole group, when the process that started it dies, however it dies (SIGKILL
included): a thread waits on a pidfd of that process (Linux >= 5.3; elsewhere it polls) and then kills the
group. Python's forkserver and resource tracker end by themselves once their last user is gone.
"""
from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from tqdm import tqdm

from hardware.errors import LavaError


def _wait_for_death(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):          # no pidfd here: poll
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    select.select([fd], [], [])                 # readable when the process has exited


def _end_with(parent: int) -> None:
    def watch() -> None:
        _wait_for_death(parent)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _init_worker(counter, parent: int) -> None:
    """Pool initializer: lead a process group, end with ``parent``, and take CPU k when ``counter`` is given.

    Pinning: one Lava network is seven OS processes that hand each time step to each other; unpinned, two
    networks on two cores slowed each other down more than they gained (measured with a benchmark busy on one
    core: 2 x 50 samples took 5.3 s each, one network of 100 samples 4.5 s; pinned, 2.6 s each)."""
    os.setpgrp()
    _end_with(parent)
    multiprocessing.set_start_method("fork", force=True)     # Lava forks its processes (as it does by itself)
    if counter is not None and hasattr(os, "sched_setaffinity"):
        with counter.get_lock():
            k = counter.value
            counter.value += 1
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[k % len(cpus)]})


def context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["hardware.backends.lava_preload"])   # (the server starts at the first pool)
    return ctx


def pool(workers: int, ctx=None) -> ProcessPoolExecutor:
    """Worker processes for Lava runs: own process groups, ended with this process, pinned when several."""
    ctx = ctx or context()
    counter = ctx.Value("i", 0) if workers > 1 else None
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(counter, os.getpid()))


def kill(executor: ProcessPoolExecutor) -> None:
    """End every worker with the Lava processes it forked (a hung Lava run never returns by itself)."""
    for p in list(executor._processes.values()):     # no public API lists a pool's workers
        for end in (os.killpg, os.kill):              # its group; and itself, when it does not lead one yet
            try:                                      # (killed while starting up, before its initializer)
                end(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# One Lava worker: the worker and the network's processes it forks. Measured on the quick conv network run one
# network per sample: about 100 MB resident each for the worker and its 2-3 Lava processes (pages shared with the
# forkserver counted in each); 400 MB leaves room for larger networks.
WORKER_BYTES = 400 << 20


def capacity() -> tuple[int, str]:
    """How many Lava workers this machine can run at once (its CPUs, and its free memory at WORKER_BYTES each),
    and what bounds it."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        free = cpus * WORKER_BYTES
    by_memory = max(1, free // WORKER_BYTES)
    if by_memory < cpus:
        return by_memory, f"{free / 2**30:.1f} GiB of free memory at about {WORKER_BYTES >> 20} MB per Lava worker"
    return cpus, f"{cpus} CPU{'s' if cpus > 1 else ''}"


def capped(workers: int) -> int:
    """``workers``, or what the machine can run at once (said on stderr when that is fewer)."""
    most, why = capacity()
    if workers > most:
        print(f"note: running {most} Lava worker{'s' if most > 1 else ''} instead of the {workers} asked for: this "
              f"machine has {why}", file=sys.stderr, flush=True)
        return most
    return workers


def run_all(fn: Callable, tasks: Sequence[tuple], workers: int, timeout: float, desc: str,
            sizes: Sequence[int], names: Sequence[str], progress: bool = True) -> list:
    """``fn(*task)`` for every task in the pool, results in order; a progress bar counts ``sizes`` (samples).

    A task that runs past ``timeout`` seconds, a worker that dies, an exception in a worker, or an interrupt
    (Ctrl-C) ends every worker and its Lava processes; all but the last raise :class:`LavaError` naming the task
    (``names``). Never more
    workers than the machine can run at once (:func:`capped`)."""
    results: list = [None] * len(tasks)
    with pool(max(1, min(capped(workers), len(tasks)))) as executor:
        futures = [executor.submit(fn, *task) for task in tasks]
        bar = tqdm(total=sum(sizes), desc=desc, unit="sample", disable=None if progress else True)
        i = 0
        try:
            for i, fut in enumerate(futures):
                results[i] = fut.result(timeout=timeout)
                bar.update(sizes[i])
        except FutureTimeout:
            kill(executor)
            raise LavaError(f"Lava timed out after {timeout:.0f} s on {names[i]}") from None
        except BrokenProcessPool:
            kill(executor)
            raise LavaError(f"a Lava worker died while running {names[i]}") from None
        except Exception as e:                  # raised in the worker (by Lava, lava-dl or our model)
            kill(executor)
            raise LavaError(f"{desc} failed on {names[i]}: {type(e).__name__}: {' '.join(str(e).split())}") from None
        except BaseException:
            kill(executor)
            raise
        finally:
            bar.close()
    return results
