"""NeuroBench-style metrics of a network as deployed on Loihi 2, from its integers and its spikes.

NeuroBench (Yik et al., "The NeuroBench framework for benchmarking neuromorphic computing algorithms and systems",
Nature Communications 2025; its metrics in neurobench/metrics/) measures a PyTorch model through hooks. We compute
the same quantities from the network read back from model.nir (``hardware/graph/ir.py``) and a trace of its spikes,
which is what runs on the chip. Each entry says how it is defined and where it differs from NeuroBench's:

- footprint: bytes of the parameters at the deployed precision (int8 weight mantissas, one byte each; per
  projection a weight exponent; per population du and dv of 12 bits and a threshold of 17 bits; per neuron a
  bias of 13 + 3 bits where a population has one). NeuroBench sums ``numel x element_size`` of the PyTorch parameters and
  buffers (float32: 4 bytes a weight); neuron state (u, v: 24 bits each) is given apart as ``state_bytes``.
- parameter count: weights (every entry of each matrix and kernel, zero or not) + biases + per population du, dv
  and threshold. NeuroBench counts ``numel`` of every parameter tensor, which is the same where decays and
  thresholds are trained per layer.
- connection sparsity: zero weights / all weights, over every weight matrix and kernel (NeuroBench: the same,
  over its Linear, Conv and RNN layers).
- activation sparsity: 1 - spikes / (neurons x steps), over every spiking population and every step of the
  samples' own steps; per layer and overall (NeuroBench: zero outputs / all outputs of its activation modules,
  the same quantity for binary spikes). A non-spiking readout has no binary activations and is left out.
- synaptic operations per inference (one sample): ``effective_acs`` counts every spike (input spikes included)
  times the non-zero weights it reaches, the accumulates the chip does; ``dense`` counts every source neuron at
  every step times every synapse it has, zero weights and silent steps included (NeuroBench's Dense);
  ``effective_macs`` is 0 (every input to every layer is a binary spike). NeuroBench counts a convolution's
  operations by running it; we count the kernel footprint per source position, which is the same number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.chip.loihi2 import fan_out
from hardware.graph.ir import Network
from hardware.judge.trace import Trace

DEFINITIONS = {
    "footprint_bytes": "parameters at the deployed precision: int8 weights, per projection an exponent, per "
                       "population du, dv, threshold, per neuron bias where present (NeuroBench: float32 PyTorch tensors)",
    "state_bytes": "neuron state on the chip: u and v, 24 bits each per neuron",
    "parameter_count": "weights (zero or not) + biases + per population du, dv, threshold",
    "connection_sparsity": "zero weights / all weights",
    "activation_sparsity": "1 - spikes / (spiking neurons x steps), over the samples' own steps",
    "synops_effective_acs": "per inference: spikes (input included) x the non-zero weights each reaches",
    "synops_dense": "per inference: every source neuron at every step x every synapse it has",
    "synops_effective_macs": "per inference: multiply-accumulates of non-binary activations (none: all spikes)",
}


def _bytes(bits: int) -> int:
    return (bits + 7) // 8


@dataclass(frozen=True)
class LayerMetrics:
    layer: str
    synops_effective_acs: float
    synops_dense: float
    activation_sparsity: float | None       # None: a non-spiking readout


@dataclass(frozen=True)
class Metrics:
    """NeuroBench-style metrics per inference, unrounded (see DEFINITIONS); :meth:`to_dict` renders them."""
    footprint_bytes: int
    state_bytes: int
    parameter_count: int
    connection_sparsity: float
    activation_sparsity: float | None
    synops_effective_acs: float
    synops_dense: float
    samples: int
    steps: int
    layers: tuple[LayerMetrics, ...]

    def to_dict(self) -> dict:
        r = lambda v, d: None if v is None else round(v, d)     # noqa: E731
        return {"footprint_bytes": self.footprint_bytes, "state_bytes": self.state_bytes,
                "parameter_count": self.parameter_count, "connection_sparsity": r(self.connection_sparsity, 4),
                "activation_sparsity": r(self.activation_sparsity, 4),
                "synops_effective_acs": r(self.synops_effective_acs, 1), "synops_dense": r(self.synops_dense, 1),
                "synops_effective_macs": 0, "samples": self.samples, "steps": self.steps,
                "layers": [{"layer": L.layer, "synops_effective_acs": r(L.synops_effective_acs, 1),
                            "synops_dense": r(L.synops_dense, 1), "activation_sparsity": r(L.activation_sparsity, 4)}
                           for L in self.layers],
                "definitions": DEFINITIONS}


def static(net: Network) -> dict:
    """Footprint, parameter count and connection sparsity: from the integers alone."""
    weights = sum(int(p.synapse.weight.size) for p in net.projections)
    zeros = sum(int(p.synapse.weight.size - np.count_nonzero(p.synapse.weight)) for p in net.projections)
    biased = [pop for pop in net.populations.values() if np.any(pop.bias_mant)]
    bias_count = sum(pop.size for pop in biased)
    pops = len(net.populations)
    footprint = weights + len(net.projections) + pops * (_bytes(12) * 2 + _bytes(17)) + bias_count * _bytes(16)
    neurons = sum(pop.size for pop in net.populations.values())
    return {"footprint_bytes": int(footprint), "state_bytes": int(neurons * 2 * _bytes(24)),
            "parameter_count": int(weights + bias_count + 3 * pops),
            "connection_sparsity": zeros / weights if weights else 0.0}


def measure(net: Network, x: np.ndarray, spikes: dict[str, np.ndarray]) -> Metrics:
    """All metrics, per inference, for input spikes ``x`` (B, n_steps, inputs) and the spikes of each population
    (B, >= n_steps, N) on those samples (steps past ``n_steps`` are not counted)."""
    B, n = x.shape[:2]
    own = {k: s[:, :n] for k, s in spikes.items()}
    counts = {"input": x.reshape(B * n, -1).sum(axis=0)}
    counts.update({k: s.reshape(B * n, -1).sum(axis=0) for k, s in own.items()})
    layers, eff, dense, fired, slots = [], 0.0, 0.0, 0.0, 0
    for name, pop in net.populations.items():
        incoming = [p for p in net.projections if p.target == name and p.source != "bias"]
        e = sum(float(counts[p.source] @ fan_out(p.synapse, nonzero=True)) for p in incoming) / B
        d = sum(float(fan_out(p.synapse).sum()) * n for p in incoming)
        sparsity = None
        if pop.spiking:
            count = float(own[name].sum()) / B
            sparsity = 1 - count / (pop.size * n)
            fired, slots = fired + count, slots + pop.size * n
        layers.append(LayerMetrics(name, e, d, sparsity))
        eff, dense = eff + e, dense + d
    return Metrics(**static(net), activation_sparsity=1 - fired / slots if slots else None,
                   synops_effective_acs=eff, synops_dense=dense, samples=int(B), steps=int(n), layers=tuple(layers))


def lines(m: dict) -> list[str]:
    """The metrics in two summary lines."""
    sparsity = "n/a" if m["activation_sparsity"] is None else f"{m['activation_sparsity']:.4f}"
    return [f"footprint {m['footprint_bytes']:,} bytes at the deployed precision ({m['parameter_count']:,} "
            f"parameters, connection sparsity {m['connection_sparsity']:.4f}), state {m['state_bytes']:,} bytes",
            f"per inference: {m['synops_effective_acs']:,.0f} effective synaptic operations (ACs; dense "
            f"{m['synops_dense']:,.0f}), activation sparsity {sparsity} over {m['samples']} samples"]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 and nb == 0:
        return 1.0
    return float(a.ravel() @ b.ravel() / (na * nb)) if na and nb else 0.0


def float_agreement(net: Network, f: Trace, i: Trace) -> list[dict]:
    """Per layer: spike counts, first divergence, cosine of per-neuron spike counts (and of voltages)."""
    rows = []
    for name, pop in net.populations.items():
        a, b = f.spikes[name], i.spikes[name]
        diff = np.argwhere(a != b)
        first = None
        if len(diff):
            s, t, k = diff[np.lexsort((diff[:, 1], diff[:, 0]))[0]]
            first = f"sample {s} step {t} neuron {k}"
        row = {"layer": name, "type": pop.kind, "float_spikes": int(a.sum()), "integer_spikes": int(b.sum()),
               "mismatched": int((a != b).sum()), "first_divergence": first or "none",
               "activity_cosine": _cosine(a.sum(axis=1).astype(float), b.sum(axis=1).astype(float))}
        if name in f.voltage:
            scale = net.float_model.populations[name].scale
            fv, iv = f.voltage[name] / scale, i.voltage[name] / scale
            row["voltage_cosine"] = _cosine(fv, iv)
            row["voltage_max_abs_error"] = float(np.abs(fv - iv).max())
        rows.append(row)
    return rows
