"""Resumable state of a distillation, kept beside its output folder: read back only if it is ours.

A checkpoint file sits next to a folder the user names, so anyone could have put a file there. It is written
with ``torch.save`` as plain data (tensors, numbers, strings, lists and dicts: what ``weights_only`` loading
accepts, so nothing in it can run code), carries our marker and the configuration it belongs to, and is read
with ``torch.load(weights_only=True)``. Anything else at that path (a pickle, random bytes, someone's file) is
refused with one line naming the file, and left as it is.
"""
from __future__ import annotations

import stat
from pathlib import Path

import torch

from export.files import atomic_write
from pipeline.data.layout import DataError

MARKER = "nmpipe-distill-checkpoint/v1"
MAX_BYTES = 8 << 30


def save(path: Path, key: str, state: dict) -> None:
    atomic_write(path, lambda p: torch.save({"marker": MARKER, "key": key, **state}, p))


def load(path: Path, key: str) -> dict | None:
    """The state saved at ``path`` for configuration ``key``; None when there is none, or it is ours but for
    another configuration (then it is replaced by the next save). Anything not ours: :class:`DataError`."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
        raise DataError(f"{path}: not a distillation checkpoint of this tool (not a plain file of at most "
                        f"{MAX_BYTES:,} bytes); move it away to distil here")
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")     # plain data only: no code runs
    except Exception as e:          # a pickle with code, random bytes, a truncated file: refused alike
        raise DataError(f"{path}: not a distillation checkpoint of this tool ({type(e).__name__}); it was left "
                        "as it is: move it away to distil here") from None
    if not isinstance(saved, dict) or saved.get("marker") != MARKER:
        raise DataError(f"{path}: not a distillation checkpoint of this tool (no {MARKER!r} marker); it was left "
                        "as it is: move it away to distil here")
    if saved.get("key") != key:
        print(f"ignoring checkpoint {path}: it was written for another configuration", flush=True)
        return None
    return saved
