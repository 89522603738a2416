"""One split of a dataset as framed tensors, with what was read and skipped."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    frames: np.ndarray        # (N, T, 2, H, W) uint8 event counts
    labels: np.ndarray        # (N,) int64
    names: tuple[str, ...]    # file (and interval) of each sample
    n_events: np.ndarray      # (N,) events per sample, before framing
    duration_us: np.ndarray   # (N,) time from first to last event
    skipped: tuple[dict, ...]
    classes: tuple[str, ...]
