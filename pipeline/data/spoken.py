"""The built-in spoken digits: synthesised speech (``pipeline/data/speech.py``) through a cochlea model
(``pipeline/data/cochlea.py``) into spike events, written once into the cache as genuine SHD-format files
(``shd_train.h5``, ``shd_test.h5``; ``pipeline/data/formats/shd.py``) and always read back through the same reader
a real SHD file goes through.

Training speakers and test speakers are disjoint (``speech.TRAIN_SPEAKERS``, ``speech.TEST_SPEAKERS``): every
speaker says each of the 20 words ``repeats`` times (11 for training, 9 for test: 3,960 and 1,080 recordings).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hardware.backends import pool
from pipeline.data import speech
from pipeline.data.cochlea import Cochlea
from pipeline.data.formats import shd
from pipeline.runfolder import _owner, _owner_dead

VERSION = 6        # bump when the synthesis or the cochlea changes, so stale caches are not reused
                   # (6: eSpeak's random generator seeded per recording, not by the time)
FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
REPEATS = {"train": 11, "test": 9}


def _simulate(job: tuple[speech.Utterance, tuple[int, ...], int]) -> tuple[np.ndarray, np.ndarray]:
    """One recording's spike events (in a worker): its waveform (noise seeded by its own seed, so a recording
    depends on nothing but its plan entry) through the cochlea."""
    u, seed, channels = job
    return Cochlea(channels=channels)(speech.synthesise(u, np.random.default_rng(seed)))


PARTIAL_MARKER = ".nmpipe-partial.json"


def sweep_partial(cache: Path) -> list[Path]:
    """Remove the hidden partial folders (``.spoken-digits-*``) in ``cache`` that a killed synthesis left: only
    those whose marker names an owner process that is gone; returns them."""
    gone = []
    for d in cache.glob(".spoken-digits-v*"):
        try:
            if d.is_symlink() or not d.is_dir():
                continue
            marker = json.loads((d / PARTIAL_MARKER).read_text())
        except (OSError, ValueError):
            continue                        # not marked: not provably ours
        owner = marker.get("owner") if isinstance(marker, dict) and marker.get("tool") == "nmpipe" else None
        if isinstance(owner, dict) and _owner_dead(owner):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def synthesis_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for synthesis (spawn: started fresh), each leading its own process group and ending with
    this process (``hardware/backends/pool.py``); none is started yet (:func:`start_workers`)."""
    return pool.pool(workers, multiprocessing.get_context("spawn"))


def start_workers(executor: ProcessPoolExecutor, workers: int) -> None:
    """Start ``executor``'s ``workers`` processes with SIGINT blocked: they inherit the mask, so a Ctrl-C while
    one starts up (before it leads its own process group) never reaches it; this process receives the Ctrl-C
    once the mask is restored, and its caller ends the workers."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for f in [executor.submit(os.getpid) for _ in range(workers)]:     # each submit starts one
            f.result(timeout=120)               # a worker that cannot start must not hold Ctrl-C forever
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def folder(cache: Path, seed: int, channels: int, workers: int = 2) -> Path:
    """The cached SHD-format files of the spoken digits for ``seed`` and ``channels``, simulated once.

    ``workers`` processes, started fresh (small processes start fast; eSpeak NG synthesises each word in a fork),
    each leading its own process group and ending with this process however it ends, SIGKILL included
    (``hardware/backends/pool.py``): Ctrl-C reaches this process alone, which ends them. The files are written
    in a hidden partial folder marked with its owner, moved into place when complete; a partial folder whose
    owner is gone is removed by the next call."""
    out = cache / f"spoken-digits-v{VERSION}-seed{seed}-ch{channels}"
    if all((out / f).is_file() for f in FILES.values()):
        return out
    speakers = {"train": speech.TRAIN_SPEAKERS, "test": speech.TEST_SPEAKERS}
    names = speech.TRAIN_SPEAKERS + speech.TEST_SPEAKERS              # speaker ids shared by both files
    cache.mkdir(parents=True, exist_ok=True)
    sweep_partial(cache)
    workers = max(1, min(workers, os.cpu_count() or 1))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=cache))
    try:
        (tmp / PARTIAL_MARKER).write_text(json.dumps({"tool": "nmpipe", "owner": _owner()}))
        executor = synthesis_pool(workers)
        try:
            start_workers(executor, workers)
            for split, name in FILES.items():
                s = 0 if split == "train" else 1
                plan = speech.plan(speakers[split], REPEATS[split], np.random.default_rng([seed, s]))
                jobs = [(u, (seed, s, i), channels) for i, u in enumerate(plan)]
                events = list(tqdm(executor.map(_simulate, jobs, chunksize=16), total=len(jobs), unit="recording",
                                   desc=f"synthesising spoken digits ({split})", disable=None))
                shd.write(tmp / name, shd.Recordings(
                    [t for t, _ in events], [c for _, c in events], np.array([u.label for u in plan]),
                    np.array([names.index(u.speaker) for u in plan]), speech.CLASSES, names))
        except BaseException:
            pool.kill(executor)             # a worker mid-word never returns by itself in time
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        (tmp / PARTIAL_MARKER).unlink()
        if out.exists():
            shutil.rmtree(out)                  # an incomplete folder of ours (its marker is the pair of files)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
