"""Turn a still image into an N-MNIST-style recording: three saccades of a DVS over the image.

N-MNIST was recorded by moving an ATIS sensor in front of an LCD showing each MNIST digit, in three saccades
along a triangle of about 100 ms each; an event is emitted whenever a pixel's log intensity changes by more than
a contrast threshold since its last event (ON for an increase, OFF for a decrease). This module reproduces that:

    L(x, y, t) = log(I(x - dx(t), y - dy(t)) + eps)
    event at (x, y, t) each time |L - L_ref(x, y)| >= C(x, y);  L_ref += sign * C

with a smooth (raised-cosine) velocity profile per saccade, per-pixel threshold mismatch, sub-millisecond
timestamps and a small rate of background noise events. Defaults were tuned so that event counts, duration and
polarity balance match the real recording in ../shared/data (see tests/test_events.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    return simulate_many([image], [rng], p)[0]


def simulate_many(images, rngs, p: SaccadeParams = SaccadeParams()) -> list[np.ndarray]:
    """Events of one recording per image, each drawn from its own generator: the same events, bit for bit, as
    simulating them one at a time, computed for all images at once (70,000 Fashion-MNIST recordings in minutes).

    Exactness rests on two facts, both tested against a line-by-line transcription of the equations that uses
    ``scipy.ndimage.map_coordinates`` (tests/test_events.py): the interpolation repeats scipy's arithmetic
    (:func:`_geometry`), and a generator's bounded integers are the same whether drawn step by step or all at
    once (PCG64 keeps its spare 32 bits in the bit generator's state), so the sub-step times of all events are
    drawn in one call after the threshold crossings, which do not depend on them, are found.
    """
    H, W = p.sensor
    times, shifts, weights = _geometry(p)
    canvas = _canvas(images, p)
    C = np.stack([np.maximum(p.contrast + p.contrast_sigma * rng.standard_normal((H, W)), 0.05)
                  for rng in rngs])                               # (B, H, W)
    step, img, pix, counts, on = _crossings(canvas, C, shifts, weights, p)
    order = np.argsort(img, kind="stable")                        # per image: step, then pixel order
    bounds = np.searchsorted(img[order], np.arange(len(images) + 1))
    duration = int(times[-1]) + p.step_us
    out = []
    for b, rng in enumerate(rngs):
        sel = order[bounds[b]:bounds[b + 1]]
        n = counts[sel]
        ys, xs = np.divmod(np.repeat(pix[sel], n), W)
        ps = np.repeat(on[sel].astype(np.int8), n)
        ts = np.repeat(times[step[sel] - 1], n) + rng.integers(0, p.step_us, n.sum())
        n_noise = rng.poisson(p.noise_rate_hz * H * W * duration * 1e-6)
        xs = np.concatenate([xs, rng.integers(0, W, n_noise)])
        ys = np.concatenate([ys, rng.integers(0, H, n_noise)])
        ts = np.concatenate([ts, rng.integers(0, duration, n_noise)])
        ps = np.concatenate([ps, rng.integers(0, 2, n_noise)])
        out.append(make_events(xs, ys, ts, ps))
    return out


_PAD = 8           # zero margin of the canvas, beyond the largest offset


def _canvas(images, p: SaccadeParams) -> np.ndarray:
    """The images on zero margins, so that a shifted window stays inside: (B, H + 2 pad, W + 2 pad)."""
    H, W = p.sensor
    canvas = np.zeros((len(images), H + 2 * _PAD, W + 2 * _PAD))
    for b, image in enumerate(images):
        if image.shape[0] > H or image.shape[1] > W:
            raise ValueError(f"image {b}: {image.shape} is larger than the sensor {p.sensor}")
        canvas[b, _PAD: _PAD + image.shape[0], _PAD: _PAD + image.shape[1]] = image
    return canvas


def _crossings(canvas: np.ndarray, C: np.ndarray, shifts, weights, p: SaccadeParams) -> tuple[np.ndarray, ...]:
    """(step, image, pixel, count, on) of every threshold crossing of every image, step by step."""
    B, (H, W) = len(canvas), p.sensor
    frame, term = np.empty((B, H, W)), np.empty((B, H, W))
    ref = diff = None
    found = []
    for k in range(len(shifts)):
        # bilinear sample, as scipy.ndimage.map_coordinates(order=1, mode="constant") computes it: the four
        # corners y-major, each ((pixel * wy) * wx), summed from the first; wx is 0 where the source lies left of
        # or above the image (scipy returns cval there, without interpolating)
        sy, sx = shifts[k]
        for j, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            window = canvas[:, sy + dy: sy + dy + H, sx + dx: sx + dx + W]
            out = frame if j == 0 else term
            np.multiply(window, weights[k, 0 + dy], out=out)
            out *= weights[k, 2 + dx]
            if j:
                frame += term
        frame += p.eps
        logs = np.log(frame)
        if ref is None:
            ref = logs
            continue
        diff = np.subtract(logs, ref, out=diff)
        ratio = np.abs(diff, out=term)
        ratio /= C
        b, y, x = np.nonzero(ratio >= 1.0)                        # floor(|diff| / C) >= 1
        if len(b):
            counts = np.floor(ratio[b, y, x]).astype(int)
            on = diff[b, y, x] > 0
            ref[b, y, x] += np.where(on, 1, -1) * counts * C[b, y, x]
            found.append((np.full(len(b), k), b, y * W + x, counts, on))
    return tuple(np.concatenate(a) for a in zip(*found)) if found else (np.zeros(0, int),) * 5
_GEOMETRY: dict = {}


def _geometry(p: SaccadeParams):
    """What every recording shares (cached per parameters): the step times, and per step the window shift into
    the padded canvas and the bilinear weights (wy0, wy1, wx0, wx1) per pixel, computed from the coordinates
    exactly as map_coordinates would be given them (``y - dy`` rounds differently from pixel to pixel, so the
    weights are per pixel)."""
    if p not in _GEOMETRY:
        H, W = p.sensor
        times, offs = trajectory(p)
        yy, xx = np.mgrid[0:H, 0:W].astype(float)
        cy = yy[None] - offs[:, 1, None, None]                    # (T, H, W) source coordinates
        cx = xx[None] - offs[:, 0, None, None]
        y0, x0 = np.floor(cy), np.floor(cx)
        wy1, wx1 = cy - y0, cx - x0
        inside = (cy >= 0) & (cx >= 0)
        if (cy > H - 1).any() or (cx > W - 1).any() or np.abs(offs).max() >= _PAD - 1:
            raise ValueError("saccade offsets must move the image right and down by less than "
                             f"{_PAD - 1} pixels (scipy's mirror rule at the far edge is not modelled)")
        shifts = []
        for k in range(len(times)):
            dy = np.unique(y0[k][inside[k]] - yy[inside[k]])
            dx = np.unique(x0[k][inside[k]] - xx[inside[k]])
            if len(dy) != 1 or len(dx) != 1:                    # never seen; the shift must be one per step
                raise ValueError(f"step {k}: the image does not move as a whole")
            shifts.append((_PAD + int(dy[0]), _PAD + int(dx[0])))
        weights = np.stack([1.0 - wy1, wy1, (1.0 - wx1) * inside, wx1 * inside], axis=1)   # (T, 4, H, W)
        _GEOMETRY[p] = (times, shifts, weights)
    return _GEOMETRY[p]
