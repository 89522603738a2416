"""AEDAT 4 through tonic's ``read_aedat4`` (backed by the ``aedat`` package), which works in tonic 1.7."""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import tonic.io

from pipeline.data import forked
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


def _decode(path: str) -> np.ndarray:
    try:
        with _rust_panics_silenced():
            ev = tonic.io.read_aedat4(path)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        # the aedat decoder (Rust, via pyo3) raises plain Exceptions for most bad files, and on some damaged ones
        # panics: pyo3's PanicException derives from BaseException
        raise EventFileError(f"{path}: not a readable AEDAT 4 file ({' '.join(str(e).split())})") from None
    names = ev.dtype.names   # tonic gives (t, x, y, on)
    return make_events(ev[names[1]], ev[names[2]], ev[names[0]].astype(np.int64), ev[names[3]].astype(np.int8))


def read_polarity(path: str | Path) -> np.ndarray:
    """The polarity events of an AEDAT 4 file, decoded in a child process: on some damaged files the Rust decoder
    does not raise but aborts its process (a failed allocation of a size read from the damaged bytes), which must
    not take this one with it."""
    def decoded() -> bytes:
        buffer = io.BytesIO()                       # np.save writes arrays with tofile(), which a pipe refuses
        np.save(buffer, _decode(str(path)), allow_pickle=False)
        return buffer.getvalue()
    try:
        data = forked.run(decoded, EventFileError)
    except forked.ChildFailed as e:
        raise EventFileError(f"{path}: not a readable AEDAT 4 file (the decoder stopped with {e.how})") from None
    return np.load(io.BytesIO(data), allow_pickle=False)
