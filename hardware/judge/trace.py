"""What a backend returns: the spikes of every population per sample and step, and what it computed."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Trace:
    """Spikes (and the voltage of non-spiking readouts) of every population.

    ``spikes[k]``: (B, steps, N) bool. ``computed[k]``: (B, steps) bool, the (sample, step) positions the backend
    computed for population k; absent means every position. A backend may compute steps past a sample's end
    (batched Lava computes each layer's tail there before its reset: ``hardware/backends/lava.py``), and may not
    compute some steps of a sample (those it spent on the previous sample's tail); the verification compares
    exactly the positions computed (``hardware/judge/equivalence.py``)."""
    spikes: dict[str, np.ndarray]
    voltage: dict[str, np.ndarray] = field(default_factory=dict)     # (B, steps, N) int64 or float
    peak: dict[str, float] = field(default_factory=dict)             # highest v / threshold reached (spiking)
    computed: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return len(next(iter(self.spikes.values())))

    def mask(self, k: str) -> np.ndarray:
        """(B, steps) positions of population k that were computed."""
        s = self.spikes[k]
        return self.computed[k] if k in self.computed else np.ones(s.shape[:2], bool)

    def window(self, steps: int) -> "Trace":
        """The first ``steps`` steps of every sample (e.g. a sample's own steps, without its tail)."""
        return Trace({k: v[:, :steps] for k, v in self.spikes.items()},
                     {k: v[:, :steps] for k, v in self.voltage.items()}, dict(self.peak),
                     {k: v[:, :steps] for k, v in self.computed.items()})

    def take(self, idx) -> "Trace":
        """The samples ``idx``."""
        return Trace({k: v[idx] for k, v in self.spikes.items()}, {k: v[idx] for k, v in self.voltage.items()},
                     dict(self.peak), {k: v[idx] for k, v in self.computed.items()})


def concat(parts: list[Trace]) -> Trace:
    """Traces of consecutive shares of the samples, joined in order."""
    first = parts[0]
    computed = {k: np.concatenate([p.mask(k) for p in parts]) for k in first.spikes
                if any(k in p.computed for p in parts)}
    return Trace({k: np.concatenate([p.spikes[k] for p in parts]) for k in first.spikes},
                 {k: np.concatenate([p.voltage[k] for p in parts]) for k in first.voltage},
                 {k: max(p.peak.get(k, -np.inf) for p in parts) for k in first.peak}, computed)
