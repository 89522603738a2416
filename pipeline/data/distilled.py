"""Reading a distilled training set (written by ``pipeline distill``, ``pipeline/distill/store.py``), checked
against the run's framing and classes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.data.layout import DataError, require_file
from pipeline.data.split import Split

FRAMES_FILE, META_FILE = "distilled.npz", "meta.json"
FRAMING_KEYS = ("name", "n_bins", "duration_us", "downsample")


def load(path: Path, cfg: DataConfig, classes: tuple[str, ...]) -> Split:
    """The distilled training split in ``path``, checked against the run's framing (``cfg``) and classes."""
    npz, meta_file = path / FRAMES_FILE, path / META_FILE
    if not npz.is_file() or not meta_file.is_file():
        raise DataError(f"{path}: not a distilled set (no {FRAMES_FILE} and {META_FILE}); "
                        "write one with `python -m pipeline distill --out DIR`")
    require_file(meta_file, "a distilled set's meta.json")
    require_file(npz, "a distilled set's frames", max_bytes=8 << 30)
    try:
        meta = json.loads(meta_file.read_text())
        framing = {key: meta["data"][key] for key in FRAMING_KEYS}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{meta_file}: not a meta.json written by `pipeline distill` ({type(e).__name__}: "
                        f"{' '.join(str(e).split())})") from None
    for key, value in framing.items():
        if value != getattr(cfg, key):
            raise DataError(f"{path}: distilled with data.{key} = {value!r}, but this run has "
                            f"{getattr(cfg, key)!r}; pass --set data.{key}={value}")
    try:
        with np.load(npz, allow_pickle=False) as z:
            frames, labels, stored = z["frames"], z["labels"].astype(np.int64), tuple(map(str, z["classes"]))
    except Exception as e:       # numpy/zipfile raise many types (BadZipFile, ValueError, KeyError, EOFError)
        raise DataError(f"{npz}: not a readable distilled set ({type(e).__name__}: "
                        f"{' '.join(str(e).split())})") from None
    if stored != tuple(classes):
        raise DataError(f"{path}: classes {stored} differ from the dataset's {tuple(classes)}")
    if frames.dtype != np.uint8 or frames.ndim != 5 or labels.ndim != 1 or len(frames) != len(labels):
        raise DataError(f"{path}/{FRAMES_FILE}: expected uint8 frames (N, T, 2, H, W) and N labels, got "
                        f"{frames.dtype} {frames.shape} and {labels.shape}")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(classes):
        raise DataError(f"{path}/{FRAMES_FILE}: labels must be class indices 0..{len(classes) - 1} "
                        f"({len(labels)} labels)")
    n_events = frames.reshape(len(frames), -1).sum(axis=1).astype(np.int64)
    return Split(frames, labels, tuple(f"{path}#{i}" for i in range(len(labels))), n_events,
                 np.full(len(labels), cfg.duration_us, np.int64), (), tuple(classes))
