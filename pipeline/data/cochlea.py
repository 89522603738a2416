"""A cochlea model: audio -> spike events, one spiking channel per place on the basilar membrane.

For a waveform ``x`` sampled at ``fs`` and channel ``c`` with centre frequency ``f_c`` (``channels`` of them,
equally spaced on the ERB-number scale between ``f_lo`` and ``f_hi``, Glasberg and Moore 1990:
``ERB-number(f) = 21.4 log10(1 + 0.00437 f)``):

    y_c = gammatone_c * x                   4th-order gammatone filter at f_c (scipy.signal.gammatone, IIR)
    r_c = max(y_c, 0)                       half-wave rectification (the inner hair cell's one-sided response)
    e_c[k] = mean of r_c over step k        the envelope at the spiking stage's rate, steps of ``step_s``
    d_c[k] = (e_c[k] / ref) ** 0.3          compression (Stevens' power law; ``ref``: the loudness scale)
    I_c[k] = I_c[k-1] + d_c[k]              an integrate-and-fire neuron without leak, reset by subtraction:
    spikes_c[k] = floor(I_c[k] / theta) - floor(I_c[k-1] / theta)     one spike per threshold crossing

so a channel's spike rate follows the compressed loudness of its band, and a silent band stays silent (below
``floor``, ``d_c`` is 0). A spike at step k is an event at time ``(k + 1/2) step_s`` on unit ``c``, as SHD stores
them (``spikes/times`` in seconds, ``spikes/units``).
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
    ref: float = 0.05              # waveform amplitude whose band envelope gives d = 1 per step
    floor: float = 0.02            # compressed drive below this (quiet bands, the noise floor) is 0
    theta: float = 4.0             # integrated drive per spike

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
        drive[drive < self.floor] = 0.0
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
