"""HDF5 files from someone else (model.nir, model.net, vectors.h5 of a received folder, a graph given to verify):
refuse what would make reading them reach outside the file or exhaust the machine, before anything is read.

HDF5 can point outside a file: an external link names another file, a dataset's raw data can live in external
files, and a virtual dataset maps other files' datasets. Reading through any of them would read (and trust)
bytes that no hash covered. HDF5 also stores a dataset's declared shape apart from its (compressed) bytes, so a
24 kB file can declare gigabytes. :func:`check` walks the file's links without following any, and refuses every
external link, soft link, external storage and virtual dataset, and any declared size above the limit, naming
the file, the object and what it found. Plain (hard-linked) groups and datasets are what NIR and netx write.
"""
from __future__ import annotations

import math
import stat
from pathlib import Path

import h5py

from hardware.errors import GraphError

MAX_BYTES = 2 << 30        # declared bytes of all datasets together; a conv net's 64 test vectors take ~10 MB


def regular_file(path: Path, what: str = "file") -> None:
    """A plain file (not a FIFO, device or folder, which would block or mislead a reader), or a GraphError."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise GraphError(f"{path}: not a readable {what} (no such file)") from None
    except OSError as e:
        raise GraphError(f"{path}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise GraphError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise GraphError(f"{path}: is not a regular file (a FIFO, socket or device); only plain files are read")


def check(path: Path, max_bytes: int = MAX_BYTES, what: str = "HDF5 file") -> None:
    """Raise :class:`GraphError` unless ``path`` is a plain HDF5 file (``what``: e.g. "NIR file") that stays within
    itself and declares at most ``max_bytes`` of data."""
    path = Path(path)
    regular_file(path, what)
    try:
        with h5py.File(path, "r") as f:
            total = _walk(path, f, "/", set(), 0)
    except GraphError:
        raise
    except Exception as e:      # h5py raises OSError, KeyError, ValueError... on damaged files
        raise GraphError(f"{path}: not a readable {what} ({type(e).__name__}: {' '.join(str(e).split())})") \
            from None
    if total > max_bytes:
        raise GraphError(f"{path}: its datasets declare {total:,} bytes in all, above the limit of {max_bytes:,}")


def _walk(path: Path, group: h5py.Group, where: str, seen: set, total: int) -> int:
    addr = h5py.h5o.get_info(group.id).addr
    if addr in seen:                 # a group hard-linked into itself: visit once
        return total
    seen.add(addr)
    for name in group:
        link = group.get(name, getlink=True)
        here = f"{where}{name}"
        if isinstance(link, h5py.ExternalLink):
            raise GraphError(f"{path}: {here} is an external link to {link.filename!r}; a received file must "
                             "hold its data itself (external links are refused)")
        if isinstance(link, h5py.SoftLink):
            raise GraphError(f"{path}: {here} is a soft link to {link.path!r}; soft links are refused")
        obj = group.get(name)
        if isinstance(obj, h5py.Group):
            total = _walk(path, obj, here + "/", seen, total)
        elif isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                raise GraphError(f"{path}: {here} is a virtual dataset mapping other files; refused")
            if obj.external:
                raise GraphError(f"{path}: {here} keeps its data in external files "
                                 f"({', '.join(str(e[0]) for e in obj.external)}); refused")
            total += math.prod(obj.shape or ()) * obj.dtype.itemsize
        else:
            raise GraphError(f"{path}: {here} is a {type(obj).__name__}, not a group or dataset; refused")
    return total
