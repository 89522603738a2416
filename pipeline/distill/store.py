"""A distilled set on disk: integer event frames (uint8) and the same data as N-MNIST-style event streams.

Folder layout::

    distilled.npz            frames (N, T, 2, H, W) uint8 events, labels (N,), classes; for an optimised method
                             also probabilities (N, T, 2, H, W) float32, the continuous set before rounding
    events/<class>/NNNNN.bin the frames as N-MNIST 40-bit event files, in frame coordinates (H x W)
    meta.json                method, IPC, the data/model/distillation configuration, storage, timings, loss
    samples.png, loss.png    the synthetic frames per class; the matching loss per step

A count c at (bin b, polarity p, y, x) becomes c events spread over that bin, so framing the event files from
t = 0 with the same ``n_bins`` and ``duration_us`` gives the frames back exactly (tests/test_distill.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.config import DataConfig
from pipeline.data import dataset
from pipeline.data.split import Split
from pipeline.data.events import make_events
from pipeline.data.formats import nmnist
from pipeline.data.layout import DataError
from pipeline.runfolder import atomic_write, write_json

FRAMES_FILE, META_FILE = "distilled.npz", "meta.json"
FRAMING_KEYS = ("name", "n_bins", "duration_us", "downsample")


def frames_to_events(frames: np.ndarray, duration_us: int) -> np.ndarray:
    """(T, 2, H, W) counts -> events; count c in bin b lies at c evenly spaced times inside that bin."""
    n_bins = frames.shape[0]
    starts = -(-np.arange(n_bins + 1) * duration_us // n_bins)        # first microsecond of each bin
    b, p, y, x = np.nonzero(frames)
    counts = frames[b, p, y, x].astype(np.int64)
    rep = np.repeat(np.arange(len(b)), counts)
    j = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)      # index within its pixel's count
    width = (starts[b + 1] - starts[b])[rep]
    t = starts[b][rep] + j * width // counts[rep]
    return make_events(x[rep], y[rep], t, p[rep])


def save(out: Path, frames: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], meta: dict,
         probabilities: np.ndarray | None = None) -> dict:
    """Write the distilled set into ``out`` (a fresh folder); returns ``meta`` with the storage sizes added."""
    extra = {} if probabilities is None else {"probabilities": probabilities.astype(np.float32)}

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, frames=frames, labels=labels, classes=np.array(classes), **extra)
    atomic_write(out / FRAMES_FILE, write_npz)
    events_bytes = 0
    for i, (f, label) in enumerate(zip(frames, labels)):
        folder = out / "events" / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        data = nmnist.encode_bin(frames_to_events(f, meta["data"]["duration_us"]))
        (folder / f"{i:05d}.bin").write_bytes(data)
        events_bytes += len(data)
    meta = dict(meta, samples=len(labels), frame_shape=list(frames.shape[1:]),
                storage={"frames_bytes": int(frames.nbytes), "frames_npz_bytes": (out / FRAMES_FILE).stat().st_size,
                         "events_bytes": events_bytes, "events": events_bytes // 5, **meta.get("storage", {})})
    write_meta(out, meta)
    return meta


def write_meta(out: Path, meta: dict) -> None:
    write_json(out / META_FILE, meta)


def load(path: Path, cfg: DataConfig, classes: tuple[str, ...]) -> Split:
    """The distilled training split in ``path``, checked against the run's framing (``cfg``) and classes."""
    npz, meta_file = path / FRAMES_FILE, path / META_FILE
    if not npz.is_file() or not meta_file.is_file():
        raise DataError(f"{path}: not a distilled set (no {FRAMES_FILE} and {META_FILE}); "
                        "write one with `python -m pipeline distill --out DIR`")
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


def training_splits(cfg: DataConfig) -> tuple[Split, Split]:
    """The run's (train, test): the distilled set in ``data.distilled`` and the real test split, or both real
    splits when no distilled set is configured."""
    if not cfg.distilled:
        return dataset.load(cfg)
    from pipeline.data.registry import DATASETS
    distilled, test = load(Path(cfg.distilled), cfg, DATASETS[cfg.name].classes), dataset.load_split(cfg, "test")
    if distilled.frames.shape[1:] != test.frames.shape[1:]:
        raise DataError(f"{cfg.distilled}: frames of shape {distilled.frames.shape[1:]}, but this dataset's "
                        f"test frames are {test.frames.shape[1:]}")
    return distilled, test
