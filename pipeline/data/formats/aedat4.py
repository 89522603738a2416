"""AEDAT 4 through tonic's ``read_aedat4`` (backed by the ``aedat`` package), which works in tonic 1.7."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import tonic.io

from pipeline.data.events import make_events
from pipeline.data.formats.errors import EventFileError


@contextlib.contextmanager
def _rust_panics_silenced():
    """A Rust panic prints its message straight to file descriptor 2 before pyo3 raises it; the message is in
    the exception too, so the file's one-line error says it. Swallow the direct print."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_polarity(path: str | Path) -> np.ndarray:
    try:
        with _rust_panics_silenced():
            ev = tonic.io.read_aedat4(str(path))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        # the aedat decoder (Rust, via pyo3) raises plain Exceptions for most bad files, and on some damaged ones
        # panics: pyo3's PanicException derives from BaseException
        raise EventFileError(f"{path}: not a readable AEDAT 4 file ({' '.join(str(e).split())})") from None
    names = ev.dtype.names   # tonic gives (t, x, y, on)
    return make_events(ev[names[1]], ev[names[2]], ev[names[0]].astype(np.int64), ev[names[3]].astype(np.int8))
