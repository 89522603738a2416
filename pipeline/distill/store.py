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

from pathlib import Path

import numpy as np

from pipeline.data.distilled import FRAMES_FILE, META_FILE
from pipeline.data.events import make_events
from pipeline.data.formats import nmnist
from pipeline.runfolder import atomic_write, write_json


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
