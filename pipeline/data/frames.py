"""Events -> per-polarity count frames in T time bins."""
from __future__ import annotations

import numpy as np


def frame_shape(sensor: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one bin: (2, H, W) per polarity for a camera (H, W); (C,) for C cochlea channels."""
    return (2, *sensor) if len(sensor) == 2 else tuple(sensor)


def to_frames(events: np.ndarray, n_bins: int, duration_us: int, sensor: tuple[int, ...]) -> np.ndarray:
    """Count events per bin and place: (T, 2, H, W) per (polarity, y, x) for a camera sensor (H, W), (T, C) per
    channel x for a 1-D sensor (C,); uint8 (saturating).

    Bins are ``duration_us / n_bins`` wide from t = 0; events at or after ``duration_us`` are outside the window.
    """
    t = events["t"].astype(np.int64)
    keep = (t >= 0) & (t < duration_us)
    b = (t[keep] * n_bins) // duration_us
    if len(sensor) == 2:
        H, W = sensor
        place = ((events["p"][keep].astype(np.int64) * H + events["y"][keep]) * W + events["x"][keep])
    else:
        place = events["x"][keep].astype(np.int64)
    size = int(np.prod(frame_shape(sensor)))
    counts = np.bincount(b * size + place, minlength=n_bins * size)
    return np.minimum(counts, 255).astype(np.uint8).reshape(n_bins, *frame_shape(sensor))
