"""Framed train/test tensors for a run, from the configured dataset."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.data import digits, nmnist
from pipeline.data.frames import to_frames


@dataclass(frozen=True)
class Split:
    frames: np.ndarray   # (N, T, 2, H, W) uint8 event counts
    labels: np.ndarray   # (N,) int64
    files: tuple[str, ...]


def load_split(root: Path, split: str, cfg: DataConfig) -> Split:
    """Read an N-MNIST-layout folder split through the N-MNIST reader and frame every recording."""
    files = digits.list_nmnist_folder(root, split)
    frames = np.empty((len(files), cfg.n_bins, 2) + nmnist.SENSOR, dtype=np.uint8)
    for k, (f, _) in enumerate(tqdm(files, desc=f"reading {split}", unit="file", leave=False, disable=None)):
        frames[k] = to_frames(nmnist.read_bin(f), cfg.n_bins, cfg.duration_us, nmnist.SENSOR)
    return Split(frames, np.array([lab for _, lab in files]), tuple(str(f) for f, _ in files))


def load(cfg: DataConfig) -> tuple[Split, Split]:
    """Train and test splits of the configured dataset."""
    cache = Path(cfg.root) if cfg.root else digits.default_cache()
    root = digits.digits_folder(cache, cfg.seed, cfg.n_train, cfg.n_test)
    return load_split(root, "Train", cfg), load_split(root, "Test", cfg)
