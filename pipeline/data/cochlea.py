"""A cochlea model: audio -> spike events, one spiking channel per place on the basilar membrane.

For a waveform ``x`` sampled at ``fs`` and channel ``c`` with centre frequency ``f_c`` (``channels`` of them,
equally spaced on the ERB-number scale between ``f_lo`` and ``f_hi``, Glasberg and Moore 1990:
``ERB-number(f) = 21.4 log10(1 + 0.00437 f)``):

    y_c = gammatone_c * x                   4th-order gammatone filter at f_c (scipy.signal.gammatone, IIR)
    r_c = max(y_c, 0)                       half-wave rectification (the inner hair cell's one-sided response)
    e_c[k] = mean of r_c over step k        the envelope at the spiking stage's rate, steps of ``step_s``
    D_c[k] = (e_c[k] / ref) ** 0.3          compression (Stevens' power law; ``ref``: the loudness scale)
    A_c[k] = A_c[k-1] + (D_c[k] - A_c[k-1]) step_s / tau      adaptation: a running mean over ``tau``
    d_c[k] = max(D_c[k] - A_c[k] - floor, 0)                   what is new in the band (onsets, changes)
    I_c[k] = I_c[k-1] + d_c[k]              an integrate-and-fire neuron without leak, reset by subtraction:
    spikes_c[k] = floor(I_c[k] / theta) - floor(I_c[k-1] / theta)     one spike per threshold crossing

so a channel fires when the loudness of its band rises above what it has adapted to, as auditory nerve fibres
do, and steady noise fades from the code. A spike at step k is an event at time ``(k + 1/2) step_s`` on unit
``c``, as SHD stores them (``spikes/times`` in seconds, ``spikes/units``). The adaptation constants were chosen
on held-out training speakers (``benchmarks/cochlea_design.py``): without adaptation, noise drove every channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal


@dataclass(frozen=True)
class Cochlea:
    channels: int = 64
    fs: int = 22050
    f_lo: float = 100.0
    f_hi: float = 8000.0
    step_s: float = 0.001          # the spiking stage's time step
    ref: float = 0.05              # waveform amplitude whose band envelope gives D = 1
    tau: float = 0.1               # adaptation time constant, seconds (0: no adaptation)
    floor: float = 0.0             # drive below this (after adaptation) is 0
    theta: float = 2.0             # integrated drive per spike

    def centres(self) -> np.ndarray:
        """Centre frequencies, ERB-spaced (Glasberg and Moore 1990), low to high."""
        erb = lambda f: 21.4 * np.log10(1 + 0.00437 * f)                          # noqa: E731
        inverse = lambda e: (10 ** (e / 21.4) - 1) / 0.00437                      # noqa: E731
        return inverse(np.linspace(erb(self.f_lo), erb(self.f_hi), self.channels))

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike events of waveform ``x``: (times in seconds, units), sorted by time."""
        hop = int(round(self.step_s * self.fs))
        n = len(x) // hop
        if n == 0:
            return np.zeros(0), np.zeros(0, np.int64)
        y = np.stack([signal.lfilter(b, a, x) for b, a in _filters(self)])          # (C, samples)
        env = np.maximum(y[:, :n * hop], 0).reshape(self.channels, n, hop).mean(axis=2)
        drive = (env / self.ref) ** 0.3
        if self.tau:
            k = self.step_s / self.tau
            drive = drive - signal.lfilter([k], [1, -(1 - k)], drive, axis=1)
        drive = np.maximum(drive - self.floor, 0.0)
        crossings = np.floor(np.cumsum(drive, axis=1) / self.theta)
        spikes = np.diff(crossings, axis=1, prepend=0).astype(np.int64)            # (C, steps)
        units, steps = np.nonzero(spikes)
        reps = spikes[units, steps]
        units, steps = np.repeat(units, reps), np.repeat(steps, reps)
        order = np.argsort(steps, kind="stable")
        return (steps[order] + 0.5) * self.step_s, units[order]


@lru_cache(maxsize=8)
def _filters(c: Cochlea) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    return tuple(signal.gammatone(float(f), "iir", fs=c.fs) for f in c.centres())
