"""Turn a still image into an N-MNIST-style recording: three saccades of a DVS over the image.

N-MNIST was recorded by moving an ATIS sensor in front of an LCD showing each MNIST digit, in three saccades
along a triangle of about 100 ms each; an event is emitted whenever a pixel's log intensity changes by more than
a contrast threshold since its last event (ON for an increase, OFF for a decrease). This module reproduces that:

    L(x, y, t) = log(I(x - dx(t), y - dy(t)) + eps)
    event at (x, y, t) each time |L - L_ref(x, y)| >= C(x, y);  L_ref += sign * C

with a smooth (raised-cosine) velocity profile per saccade, per-pixel threshold mismatch, sub-millisecond
timestamps and a small rate of background noise events. Defaults were tuned so that event counts, duration and
polarity balance match the real recording in ../shared/data (see tests/test_saccades.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pipeline.data.events import make_events


@dataclass(frozen=True)
class SaccadeParams:
    sensor: tuple[int, int] = (34, 34)
    saccade_us: int = 100_000             # one saccade
    pause_us: int = 5_000                 # still time between saccades
    step_us: int = 1000                   # simulation step (the fastest motion is ~0.1 px per step)
    triangle: tuple = ((1.0, 5.0), (3.0, 1.0), (5.0, 5.0))   # offsets (dx, dy) in pixels, visited in order
    contrast: float = 0.35                # log-intensity threshold C
    contrast_sigma: float = 0.03          # pixel-to-pixel mismatch of C
    eps: float = 0.08                     # dark level of the screen, relative to full white
    noise_rate_hz: float = 0.5            # background events per pixel per second


def trajectory(p: SaccadeParams) -> tuple[np.ndarray, np.ndarray]:
    """Times (us) and (dx, dy) offsets: three saccades around the triangle with a raised-cosine velocity."""
    verts = np.array(p.triangle + (p.triangle[0],))
    per = p.saccade_us // p.step_us
    s = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, per + 1) / per)          # 0 -> 1, zero speed at both ends
    pause = np.ones(p.pause_us // p.step_us)
    pieces = [verts[:1]]
    for a, b in zip(verts[:-1], verts[1:]):
        pieces.append(a + (b - a) * s[:, None])
        pieces.append(np.repeat(b[None], len(pause), axis=0))
    offs = np.concatenate(pieces)
    return np.arange(len(offs)) * p.step_us, offs


def simulate(image: np.ndarray, rng: np.random.Generator, p: SaccadeParams = SaccadeParams()) -> np.ndarray:
    """Events of one recording of ``image`` (H x W, values in [0, 1]) placed at the sensor's top-left corner."""
    H, W = p.sensor
    times, offs = trajectory(p)
    canvas = np.zeros((H, W))
    canvas[: image.shape[0], : image.shape[1]] = image
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    coords = np.stack([yy[None] - offs[:, 1, None, None], xx[None] - offs[:, 0, None, None]])
    frames = ndimage.map_coordinates(canvas, coords.reshape(2, -1), order=1, mode="constant")
    logs = np.log(frames.reshape(len(times), H, W) + p.eps)
    C = np.maximum(p.contrast + p.contrast_sigma * rng.standard_normal((H, W)), 0.05)
    ref = logs[0].copy()
    xs, ys, ts, ps = [], [], [], []
    for k in range(1, len(times)):
        diff = logs[k] - ref
        n = np.floor(np.abs(diff) / C).astype(int)
        y, x = np.nonzero(n)
        if len(y):
            counts = n[y, x]
            pol = (diff[y, x] > 0).astype(np.int8)
            ref[y, x] += np.where(pol == 1, 1, -1) * counts * C[y, x]
            ys.append(np.repeat(y, counts))
            xs.append(np.repeat(x, counts))
            ps.append(np.repeat(pol, counts))
            ts.append(times[k - 1] + rng.integers(0, p.step_us, counts.sum()))
    duration = int(times[-1]) + p.step_us
    n_noise = rng.poisson(p.noise_rate_hz * H * W * duration * 1e-6)
    xs.append(rng.integers(0, W, n_noise)); ys.append(rng.integers(0, H, n_noise))
    ts.append(rng.integers(0, duration, n_noise)); ps.append(rng.integers(0, 2, n_noise))
    return make_events(*(np.concatenate(a) for a in (xs, ys, ts, ps)))
