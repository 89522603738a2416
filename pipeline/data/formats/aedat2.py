"""AEDAT 2.0 (jAER) with DVS128 addresses: CIFAR10-DVS as its publishers distribute it.

After the '#' header, events are 8 bytes each, big-endian: a 32-bit address and a 32-bit timestamp (us). A DVS128
address holds polarity in bit 0, x in bits 1-7 and y in bits 8-14. Coordinates and polarity follow the
publisher's reader (dat2mat.m, which CIFAR10-DVS's README points to): x = 127 - x_bits, y = y_bits,
ON = 1 - bit 0. tonic 1.7's ``read_dvs_128`` fails on every file (it unpacks three header values into two), so
this reader is ours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.events import make_events
from pipeline.data.formats.aedat_header import read_file, split_header
from pipeline.data.formats.errors import EventFileError

RECORD = np.dtype([("addr", ">u4"), ("t", ">u4")])
SENSOR = (128, 128)


def read_dvs128(path: str | Path) -> np.ndarray:
    data = read_file(path)
    _, start = split_header(data, path, b"2.0")
    body = len(data) - start
    if body % RECORD.itemsize:
        raise EventFileError(f"{path}: {body} data bytes is not a whole number of 8-byte AEDAT 2.0 events "
                             f"(truncated after byte {start + body - body % RECORD.itemsize})")
    rec = np.frombuffer(data, RECORD, offset=start)
    addr = rec["addr"].astype(np.int64)
    return make_events(127 - ((addr >> 1) & 0x7F), (addr >> 8) & 0x7F, rec["t"].astype(np.int64), 1 - (addr & 1))


def encode_dvs128(events: np.ndarray, header: tuple[str, ...] = ("#Format: RAW",)) -> bytes:
    """Events -> an AEDAT 2.0 file in the same convention (what jAER writes for a DVS128)."""
    rec = np.empty(len(events), RECORD)
    rec["addr"] = ((events["y"].astype(np.uint32) & 0x7F) << 8) | ((127 - events["x"].astype(np.uint32)) << 1) \
        | (1 - events["p"].astype(np.uint32))
    rec["t"] = events["t"]
    head = "".join(line + "\r\n" for line in ("#!AER-DAT2.0",) + header)
    return head.encode() + rec.tobytes()
