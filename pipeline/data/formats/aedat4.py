"""AEDAT 4 through tonic's ``read_aedat4`` (backed by the ``aedat`` package), which works in tonic 1.7."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tonic.io

from pipeline.data.events import make_events
from pipeline.data.formats.errors import EventFileError


def read_polarity(path: str | Path) -> np.ndarray:
    try:
        ev = tonic.io.read_aedat4(str(path))
    except Exception as e:   # the aedat decoder raises plain Exceptions (or OSError) for any bad file
        raise EventFileError(f"{path}: not a readable AEDAT 4 file ({e})") from None
    names = ev.dtype.names   # tonic gives (t, x, y, on)
    return make_events(ev[names[1]], ev[names[2]], ev[names[0]].astype(np.int64), ev[names[3]].astype(np.int8))
