"""The IDX format of (Fashion-)MNIST: big-endian magic (0x0000, type, ndim), ndim int32 sizes, raw data."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from pipeline.data.formats.errors import EventFileError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    try:
        with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise EventFileError(f"{path}: cannot read IDX file ({e})") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _TYPES:
        raise EventFileError(f"{path}: not an IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int(v) for v in np.frombuffer(data, ">i4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[data[2]])
    need = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(data) < need:
        raise EventFileError(f"{path}: IDX data truncated after byte {len(data)} (needs {need})")
    return np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=4 + 4 * ndim).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08}[array.dtype]
    return bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">i4").tobytes() + array.tobytes()
