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
