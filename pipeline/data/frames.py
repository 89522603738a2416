"""Events -> per-polarity count frames in T time bins."""
from __future__ import annotations

import numpy as np


def to_frames(events: np.ndarray, n_bins: int, duration_us: int, sensor: tuple[int, int]) -> np.ndarray:
    """Count events per (bin, polarity, y, x): shape (T, 2, H, W), uint8 (saturating).

    Bins are ``duration_us / n_bins`` wide from t = 0; events at or after ``duration_us`` are outside the window.
    """
    H, W = sensor
    t = events["t"].astype(np.int64)
    keep = (t >= 0) & (t < duration_us)
    b = (t[keep] * n_bins) // duration_us
    flat = ((b * 2 + events["p"][keep]) * H + events["y"][keep]) * W + events["x"][keep]
    counts = np.bincount(flat.astype(np.int64), minlength=n_bins * 2 * H * W)
    return np.minimum(counts, 255).astype(np.uint8).reshape(n_bins, 2, H, W)
