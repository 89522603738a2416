"""AEDAT 3.1 polarity events: DVS128 Gesture as IBM distributes it.

After the '#' header (ending '#!END-HEADER'), data comes in packets: a 28-byte little-endian header (eventType
int16, eventSource int16, eventSize int32, eventTSOffset int32, eventTSOverflow int32, eventCapacity int32,
eventNumber int32, eventValid int32) and eventNumber events of eventSize bytes. Polarity events (type 1) are a
uint32 (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and an int32 timestamp; the full timestamp is
``overflow << 31 | timestamp``. Other event types are skipped; invalid polarity events are dropped, as the spec
says. tonic 1.7's ``read_dvs_ibm`` fails on every file, so this reader is ours.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pipeline.data.events import make_events
from pipeline.data.formats.aedat_header import read_file, split_header
from pipeline.data.formats.errors import EventFileError

PACKET = struct.Struct("<hhiiiiii")
POLARITY = 1
POLARITY_EVENT = np.dtype([("data", "<u4"), ("t", "<i4")])


def read_polarity(path: str | Path) -> np.ndarray:
    data = read_file(path)
    _, pos = split_header(data, path, b"3.1")
    parts = []
    while pos < len(data):
        if pos + PACKET.size > len(data):
            raise EventFileError(f"{path}: packet header truncated at byte {pos}")
        etype, _, size, _, overflow, _, number, _ = PACKET.unpack_from(data, pos)
        pos += PACKET.size
        if size <= 0 or number < 0 or pos + size * number > len(data):
            raise EventFileError(f"{path}: packet at byte {pos - PACKET.size} declares {number} events of "
                                 f"{size} bytes; the file ends after {len(data) - pos} (truncated)")
        if etype == POLARITY:
            if size != POLARITY_EVENT.itemsize:
                raise EventFileError(f"{path}: polarity packet at byte {pos - PACKET.size} has event size {size}")
            ev = np.frombuffer(data, POLARITY_EVENT, count=number, offset=pos)
            parts.append((ev[(ev["data"] & 1) == 1], overflow))
        pos += size * number
    if not parts:
        return make_events([], [], [], [])
    d = np.concatenate([ev["data"] for ev, _ in parts]).astype(np.int64)
    t = np.concatenate([(np.int64(o) << 31) | ev["t"].astype(np.int64) for ev, o in parts])
    return make_events((d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, t, (d >> 1) & 1)


def encode_polarity(events: np.ndarray, packet_size: int = 4096) -> bytes:
    """Events -> an AEDAT 3.1 file of polarity packets (what jAER/cAER write), splitting on timestamp overflow."""
    head = "#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n".encode()
    t = events["t"].astype(np.int64)
    chunks = [head]
    for overflow in np.unique(t >> 31):                     # events are time-sorted: each group is contiguous
        group = np.nonzero((t >> 31) == overflow)[0]
        for sel in np.array_split(group, -(-len(group) // packet_size)):
            ev = np.empty(len(sel), POLARITY_EVENT)
            ev["data"] = (events["x"][sel].astype(np.uint32) << 17) | (events["y"][sel].astype(np.uint32) << 2) \
                | (events["p"][sel].astype(np.uint32) << 1) | 1
            ev["t"] = t[sel] & 0x7FFFFFFF
            chunks.append(PACKET.pack(POLARITY, 1, 8, 4, int(overflow), len(sel), len(sel), len(sel)))
            chunks.append(ev.tobytes())
    return b"".join(chunks)
