"""PACE's matching terms between real and synthetic features of one class.

SDR features densify spikes with the residual membrane potential: ``F_t = s_t + k (v_t / theta - s_t)``, with
v_t the voltage before the spike decision (our model records ``(v - theta) / theta``).

Spatial term: the empirical characteristic function of a feature set, ``Phi(w) = mean_j exp(i <w, f_j>)`` at
random frequencies w ~ N(0, I). Per frequency, the amplitude part ``(|Phi_r| - |Phi_s|)^2`` and the phase part
``2 |Phi_r| |Phi_s| (1 - cos(arg Phi_r - arg Phi_s))`` add up to ``|Phi_r - Phi_s|^2``; the distance is the mean
over frequencies of the square root of their (weighted) sum. Temporal term: the same distance between the
DFTs over time of the class-mean feature sequences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def sdr_features(spikes: torch.Tensor, drive: torch.Tensor, k: float) -> torch.Tensor:
    """(B, T, N) spikes and drive (v - theta) / theta -> SDR features of the same shape."""
    return spikes + k * (drive + 1.0 - spikes)


def amplitude_phase(a: torch.Tensor, b: torch.Tensor, w_amp: float = 1.0, w_phase: float = 1.0) -> torch.Tensor:
    """Mean over entries of sqrt(w_amp (|a| - |b|)^2 + w_phase 2 |a| |b| (1 - cos(arg a - arg b)))."""
    amp = (a.abs() - b.abs()) ** 2
    phase = 2 * a.abs() * b.abs() * (1 - torch.cos(torch.angle(a) - torch.angle(b)))
    return torch.sqrt(w_amp * amp + w_phase * phase + 1e-12).mean()


def characteristic(features: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Empirical characteristic function of (B, D) features at (F, D) frequencies: (F,) complex."""
    proj = features @ freqs.T
    return torch.complex(torch.cos(proj).mean(dim=0), torch.sin(proj).mean(dim=0))


def spatial_distance(real: torch.Tensor, synth: torch.Tensor, freqs: torch.Tensor, **weights) -> torch.Tensor:
    """Characteristic-function distance between (B_r, D) and (B_s, D) feature sets."""
    return amplitude_phase(characteristic(real, freqs), characteristic(synth, freqs), **weights)


def temporal_distance(real: torch.Tensor, synth: torch.Tensor, **weights) -> torch.Tensor:
    """Distance between the DFTs over time of the class-mean sequences of (B, T, D) features."""
    return amplitude_phase(torch.fft.rfft(real.mean(dim=0), dim=0), torch.fft.rfft(synth.mean(dim=0), dim=0),
                           **weights)


def features(model, x: torch.Tensor, sdr_k: float, keep_graph: bool, layers: list[int]) -> list[torch.Tensor]:
    """Features (B, n_steps, D) of ``layers``: SDR features, or spikes when ``sdr_k`` is 0."""
    out = model(x, detach_drive=not keep_graph)
    return [sdr_features(out.spikes[l], out.drive[l], sdr_k) if sdr_k else out.spikes[l] for l in layers]


@dataclass
class RealStats:
    """The real side of every matching term for one probe and layer (features in units of ``spread``)."""
    spread: float
    freqs: torch.Tensor           # (F, D)
    mean: torch.Tensor            # (C, D) class means of the time-averaged features
    cf: torch.Tensor              # (C, F) complex: characteristic functions of the time-averaged features
    dft: torch.Tensor             # (C, K, D) complex: DFT over time of the class-mean feature sequence


@dataclass(frozen=True)
class Frequencies:
    """The random frequencies of the characteristic function: how many, their std, and their generator."""
    count: int
    scale: float
    generator: torch.Generator


def real_stats(model, frames: np.ndarray, by_class: list[np.ndarray], layers: list[int], sdr_k: float,
               freqs: Frequencies, batch: int = 250) -> list[RealStats]:
    """One pass of the real frames of every class through ``model``: per layer, the real statistics."""
    per_class = []
    with torch.no_grad():
        for ix in by_class:
            parts = [features(model, torch.from_numpy(frames[ix[i:i + batch]]), sdr_k, False, layers)
                     for i in range(0, len(ix), batch)]
            per_class.append([torch.cat(p) for p in zip(*parts)])       # per layer (B_c, n, D)
        out = []
        for l in range(len(layers)):
            avg = torch.cat([f[l].mean(dim=1) for f in per_class])
            spread = float((avg - avg.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt().clamp(min=1e-6))
            w = torch.randn(freqs.count, avg.shape[1], generator=freqs.generator) * freqs.scale
            feats = [f[l] / spread for f in per_class]
            out.append(RealStats(spread, w, torch.stack([f.mean(dim=(0, 1)) for f in feats]),
                                 torch.stack([characteristic(f.mean(dim=1), w) for f in feats]),
                                 torch.stack([torch.fft.rfft(f.mean(dim=0), dim=0) for f in feats])))
    return out
