"""The built-in spoken digits: synthesised speech (``pipeline/data/speech.py``) through a cochlea model
(``pipeline/data/cochlea.py``) into spike events, written once into the cache as genuine SHD-format files
(``shd_train.h5``, ``shd_test.h5``; ``pipeline/data/formats/shd.py``) and always read back through the same reader
a real SHD file goes through.

Training speakers and test speakers are disjoint (``speech.TRAIN_SPEAKERS``, ``speech.TEST_SPEAKERS``): every
speaker says each of the 20 words ``repeats`` times (11 for training, 9 for test: 3,960 and 1,080 recordings).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.data import speech
from pipeline.data.cochlea import Cochlea
from pipeline.data.formats import shd

VERSION = 2        # bump when the synthesis or the cochlea changes, so stale caches are not reused
FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
REPEATS = {"train": 11, "test": 9}


def folder(cache: Path, seed: int, channels: int) -> Path:
    """The cached SHD-format files of the spoken digits for ``seed`` and ``channels``, simulated once."""
    out = cache / f"spoken-digits-v{VERSION}-seed{seed}-ch{channels}"
    if all((out / f).is_file() for f in FILES.values()):
        return out
    cochlea = Cochlea(channels=channels)
    speakers = {"train": speech.TRAIN_SPEAKERS, "test": speech.TEST_SPEAKERS}
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=cache) as tmp:
        for split, name in FILES.items():
            rng = np.random.default_rng([seed, 0 if split == "train" else 1])
            plan = speech.plan(speakers[split], REPEATS[split], rng)
            names = speakers[split]
            times, units = [], []
            for u in tqdm(plan, desc=f"synthesising spoken digits ({split})", unit="recording", disable=None):
                t, c = cochlea(speech.synthesise(u, rng))
                times.append(t)
                units.append(c)
            shd.write(Path(tmp) / name, shd.Recordings(
                times, units, np.array([u.label for u in plan]), np.array([names.index(u.speaker) for u in plan]),
                speech.CLASSES, names))
        if out.exists():
            shutil.rmtree(out)                  # an incomplete folder of ours (its marker is the pair of files)
        Path(tmp).rename(out)
        Path(tmp).mkdir()                       # for TemporaryDirectory's clean-up
    return out
