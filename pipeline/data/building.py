"""Building a dataset cache (the simulated digits and Fashion-MNIST, the synthesised spoken digits): worker processes
that never outlive the command, and a partial folder that a killed build leaves for the next one to sweep.

Workers start fresh (spawn), with SIGINT blocked so that a Ctrl-C while one starts up never reaches it; each then
leads its own process group and ends, with whatever it forked, when the command ends, however it ends (SIGKILL
included; ``hardware/backends/pool.py``). Ctrl-C reaches the command alone, which ends them and removes its partial
folder. The partial folder is marked with its owner process from the start; one whose owner is gone is removed by
the next build in the same place, and nothing unmarked is ever touched.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

from hardware.backends import pool
from pipeline.runfolder import _owner, _owner_dead

PARTIAL_MARKER = ".nmpipe-partial.json"


@contextlib.contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Ctrl-C held for the block, and raised after it (with the command's own handler) if it came.

    SIGINT is blocked in this thread, so the processes started in the block inherit a mask that keeps it from
    them while they start up (before each leads its own process group). Blocking is per thread and a process's
    signal may go to any of its threads (torch's, tqdm's), so the handler is also swapped for one that only
    records it: a Ctrl-C never cuts a worker's start in half (the worker would print a traceback)."""
    caught: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum)) if main else None
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)        # a Ctrl-C pending on this thread arrives now
        if main:
            signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)       # the command's own handler: raises its interrupt
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


@contextlib.contextmanager
def workers(n: int) -> Iterator[ProcessPoolExecutor]:
    """``n`` worker processes (at most the CPUs), started as the module docstring says (all of them before the
    block runs, with Ctrl-C held: :func:`ctrl_c_held`); on any exception in the block (Ctrl-C included) they are
    killed, with what they forked, before it propagates."""
    n = max(1, min(n, os.cpu_count() or 1))
    # Made outside the held block: making it starts multiprocessing's resource tracker, which unblocks SIGINT in
    # this thread when it has started (the tracker itself ignores SIGINT).
    executor = pool.pool(n, multiprocessing.get_context("spawn"))
    try:
        with ctrl_c_held():
            for f in [executor.submit(os.getpid) for _ in range(n)]:       # each submit starts one
                f.result(timeout=120)           # a worker that cannot start must not hold Ctrl-C forever
        yield executor
    except BaseException:
        pool.kill(executor)                     # a worker mid-task never returns by itself in time
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def sweep(parent: Path, pattern: str) -> list[Path]:
    """Remove the partial folders matching ``pattern`` in ``parent`` whose marker names an owner process that is
    gone; returns them. Unmarked folders are not provably ours and stay."""
    gone = []
    for d in parent.glob(pattern):
        try:
            if d.is_symlink() or not d.is_dir():
                continue
            marker = json.loads((d / PARTIAL_MARKER).read_text())
        except (OSError, ValueError):
            continue
        owner = marker.get("owner") if isinstance(marker, dict) and marker.get("tool") == "nmpipe" else None
        if isinstance(owner, dict) and _owner_dead(owner):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


@contextlib.contextmanager
def partial(final: Path, prefix: str) -> Iterator[Path]:
    """A folder beside ``final`` named ``prefix`` + random, marked with its owner, that becomes ``final`` when the
    block completes (replacing an incomplete ``final`` of ours) and is removed when it fails; partial folders of
    ``prefix`` left by a build whose owner is gone are swept first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep(final.parent, f"{prefix}*")
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        (tmp / PARTIAL_MARKER).write_text(json.dumps({"tool": "nmpipe", "owner": _owner()}))
        yield tmp
        (tmp / PARTIAL_MARKER).unlink()
        if final.exists():
            shutil.rmtree(final)                # an incomplete folder of ours (its callers' marker is its files)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
