"""Event arrays: numpy structured arrays with a declared dtype, as tonic uses them."""
from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def make_events(x, y, t, p) -> np.ndarray:
    """Build an event array sorted by time (x, y in pixels, t in microseconds, p in {0 = OFF, 1 = ON})."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev[np.argsort(ev["t"], kind="stable")]
