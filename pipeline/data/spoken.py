"""The built-in spoken digits: synthesised speech (``pipeline/data/speech.py``) through a cochlea model
(``pipeline/data/cochlea.py``) into spike events, written once into the cache as genuine SHD-format files
(``shd_train.h5``, ``shd_test.h5``; ``pipeline/data/formats/shd.py``) and always read back through the same reader
a real SHD file goes through.

Training speakers and test speakers are disjoint (``speech.TRAIN_SPEAKERS``, ``speech.TEST_SPEAKERS``): every
speaker says each of the 20 words ``repeats`` times (11 for training, 9 for test: 3,960 and 1,080 recordings).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.data import building, speech
from pipeline.data.cochlea import Cochlea
from pipeline.data.formats import shd

VERSION = 6        # bump when the synthesis or the cochlea changes, so stale caches are not reused
                   # (6: eSpeak's random generator seeded per recording, not by the time)
FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
REPEATS = {"train": 11, "test": 9}


def _simulate(job: tuple[speech.Utterance, tuple[int, ...], int]) -> tuple[np.ndarray, np.ndarray]:
    """One recording's spike events (in a worker): its waveform (noise seeded by its own seed, so a recording
    depends on nothing but its plan entry) through the cochlea."""
    u, seed, channels = job
    return Cochlea(channels=channels)(speech.synthesise(u, np.random.default_rng(seed)))


def folder(cache: Path, seed: int, channels: int, workers: int = 2) -> Path:
    """The cached SHD-format files of the spoken digits for ``seed`` and ``channels``, simulated once by
    ``workers`` processes (eSpeak NG synthesises each word in a fork of one) into a partial folder that becomes
    the cache when complete (``pipeline/data/building.py``: no process outlives the command, a killed build's
    folder is swept by the next)."""
    out = cache / f"spoken-digits-v{VERSION}-seed{seed}-ch{channels}"
    if all((out / f).is_file() for f in FILES.values()):
        return out
    speakers = {"train": speech.TRAIN_SPEAKERS, "test": speech.TEST_SPEAKERS}
    names = speech.TRAIN_SPEAKERS + speech.TEST_SPEAKERS              # speaker ids shared by both files
    with building.partial(out, f".{out.name}.") as tmp, building.workers(workers) as executor:
        for split, name in FILES.items():
            s = 0 if split == "train" else 1
            plan = speech.plan(speakers[split], REPEATS[split], np.random.default_rng([seed, s]))
            jobs = [(u, (seed, s, i), channels) for i, u in enumerate(plan)]
            events = list(tqdm(executor.map(_simulate, jobs, chunksize=16), total=len(jobs), unit="recording",
                               desc=f"synthesising spoken digits ({split})", disable=None))
            shd.write(tmp / name, shd.Recordings(
                [t for t, _ in events], [c for _, c in events], np.array([u.label for u in plan]),
                np.array([names.index(u.speaker) for u in plan]), speech.CLASSES, names))
    return out
