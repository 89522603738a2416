"""The N-MNIST ``.bin`` format (Orchard et al., 2015): one 40-bit record per event.

Byte 0: x; byte 1: y; byte 2: bit 7 polarity (1 = ON), bits 6..0 timestamp bits 22..16; bytes 3, 4: timestamp bits
15..0, in microseconds. Reading uses tonic's ``read_mnist_file`` (it works in tonic 1.7); tonic has no writer, so
:func:`write_bin` is ours, checked against that reader.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tonic.io

from pipeline.data.events import make_events
from pipeline.data.formats.errors import EventFileError

MAX_TIMESTAMP_US = 2**23 - 1   # 23 timestamp bits; N-MNIST recordings last ~0.3 s, far below
SENSOR = (34, 34)


def read_bin(path: str | Path) -> np.ndarray:
    """Read an N-MNIST ``.bin`` file into an :data:`EVENT_DTYPE` array."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise EventFileError(f"{path}: cannot read N-MNIST file ({e.strerror})") from None
    if size % 5:
        raise EventFileError(f"{path}: {size} bytes is not a whole number of 5-byte N-MNIST events "
                             f"(truncated after byte {size - size % 5})")
    raw = tonic.io.read_mnist_file(str(path), dtype=np.dtype([(n, "<i8") for n in "xytp"]))
    return make_events(raw["x"], raw["y"], raw["t"], raw["p"])


def encode_bin(events: np.ndarray) -> bytes:
    """Encode events as N-MNIST 40-bit records."""
    t = events["t"].astype(np.int64)
    if len(t) and (t.min() < 0 or t.max() > MAX_TIMESTAMP_US):
        raise EventFileError(f"timestamps must lie in [0, {MAX_TIMESTAMP_US}] us for N-MNIST, "
                             f"got [{t.min()}, {t.max()}]")
    rec = np.empty((len(events), 5), dtype=np.uint8)
    rec[:, 0] = events["x"]
    rec[:, 1] = events["y"]
    rec[:, 2] = (events["p"].astype(np.uint8) << 7) | ((t >> 16) & 0x7F).astype(np.uint8)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    return rec.tobytes()


def write_bin(path: str | Path, events: np.ndarray) -> None:
    """Write events to an N-MNIST ``.bin`` file."""
    Path(path).write_bytes(encode_bin(events))

