"""Loihi 2's limits as data, a check of any NIR graph against them, a resource estimate and an energy estimate.

Parameter limits are those of Lava's bit-accurate models, which are what CI runs; chip resources and energy are
public figures, approximate where Intel publishes no exact number, and every one of them is configurable.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import nir
import numpy as np

from hardware.graph import Chain, load_chain


@dataclass(frozen=True)
class Limits:
    # lava/proc/dense/models.py PyDenseModelBitAcc: 8-bit weight mantissas (clip_weights(..., num_bits=8))
    weight_min: int = -128
    weight_max: int = 127
    # Loihi's shared weight exponent, 4-bit signed (Davies et al., IEEE Micro 2018; NxSDK weightExponent -8..7)
    weight_exp_min: int = -8
    weight_exp_max: int = 7
    # lava/proc/lif/models.py PyLifModelBitAcc docstring: du, dv unsigned 12-bit; vth unsigned 17-bit;
    # bias_mant signed 13-bit; bias_exp unsigned 3-bit; u and v 24-bit (uv_bitwidth = 24)
    decay_max: int = 4095
    vth_max: int = 2**17 - 1
    bias_mant_min: int = -4096
    bias_mant_max: int = 4095
    bias_exp_max: int = 7
    state_bits: int = 24
    # lava/proc/dense/process.py DelayDense and lava-dl netx (clamps delays at 62): synaptic delay in steps
    delay_max: int = 62
    # time steps per inference: configurable bound (Loihi runs are time-step bounded; ours: T + depth)
    max_steps: int = 256


@dataclass(frozen=True)
class Resources:
    # Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2" (technology brief, 2021):
    # 128 neuro-cores per chip, up to 1M neurons and 120M synapses per chip, 192 KB of memory per core shared
    # between synapses, neuron state and routing. Neurons per core: 8192 is the brief's 1M / 128.
    cores_per_chip: int = 128
    neurons_per_core: int = 8192
    synapse_memory_bits_per_core: int = 128 * 1024 * 8    # approximate share of the 192 KB left for synapses
    bits_per_synapse: int = 8                              # a dense 8-bit weight; sparse formats cost more
    # input axons per core: Loihi 1 had 4096 (Davies et al. 2018); Loihi 2 is not published, same assumed
    axons_per_core: int = 4096


@dataclass(frozen=True)
class Energy:
    """Per-operation energies of Loihi (Davies et al., IEEE Micro 38(1), 2018, Table 2, Loihi 1 at 0.75 V).
    Intel has not published Loihi 2 per-operation figures: this is an estimate, and labelled as one."""
    synop_pj: float = 23.6               # energy per synaptic spike operation (minimum)
    neuron_update_active_pj: float = 81.0
    neuron_update_inactive_pj: float = 52.0
    spike_pj: float = 1.7                # within-tile spike energy


@dataclass(frozen=True)
class Violation:
    node: str
    parameter: str
    value: object
    limit: str

    def __str__(self) -> str:
        return f"{self.node}: {self.parameter} = {self.value} violates {self.limit}"


def _range(node: str, name: str, values, lo: int, hi: int, what: str) -> list[Violation]:
    arr = np.asarray(values)
    bad = (arr < lo) | (arr > hi)
    if not bad.any():
        return []
    worst = arr[bad].flat[np.argmax(np.abs(arr[bad]).ravel())]
    return [Violation(node, name, int(worst) if float(worst).is_integer() else float(worst),
                      f"{what} [{lo}, {hi}]" + (f" ({int(bad.sum())} values)" if arr.size > 1 else ""))]


def check(graph: nir.NIRGraph, limits: Limits = Limits(), resources: Resources = Resources()) -> list[Violation]:
    """Every parameter of ``graph`` outside Loihi 2's limits, and layers that cannot fit a core or the chip."""
    L, out = limits, []
    for name, node in sorted(graph.nodes.items()):
        md = node.metadata or {}
        if isinstance(node, (nir.Linear, nir.Affine)) and "weight_mantissa" in md:
            out += _range(name, "weight_mantissa", md["weight_mantissa"], L.weight_min, L.weight_max,
                          "8-bit signed weight mantissa")
            out += _range(name, "weight_exp", md["weight_exp"], L.weight_exp_min, L.weight_exp_max,
                          "weight exponent")
            out += _range(name, "delay", md.get("delay", 1), 1, L.delay_max, "synaptic delay in steps")
        if isinstance(node, nir.CubaLIF) and "du" in md:
            out += _range(name, "du", md["du"], 0, L.decay_max, "12-bit current decay")
            out += _range(name, "dv", md["dv"], 0, L.decay_max, "12-bit voltage decay")
            out += _range(name, "vth", md["vth"], 0, L.vth_max, "17-bit threshold mantissa")
            out += _range(name, "bias_mant", md.get("bias_mant", 0), L.bias_mant_min, L.bias_mant_max,
                          "13-bit signed bias mantissa")
            out += _range(name, "bias_exp", md.get("bias_exp", 0), 0, L.bias_exp_max, "3-bit bias exponent")
    steps = (graph.metadata or {}).get("n_steps")
    if steps is not None and int(steps) > L.max_steps:
        out.append(Violation("graph", "n_steps", int(steps), f"configured maximum of {L.max_steps} time steps"))
    if not out:
        chain = load_chain(graph)
        for layer in chain.layers:
            fan_in = layer.weight.shape[1]
            if fan_in > resources.axons_per_core:
                out.append(Violation(layer.name, "fan_in", fan_in, f"{resources.axons_per_core} input axons per core"))
            elif _neurons_per_core(fan_in, resources) < 1:
                out.append(Violation(layer.name, "fan_in", fan_in, "the synaptic memory of one core for one neuron"))
        if not out:
            used = estimate(chain, resources)["cores"]
            if used > resources.cores_per_chip:
                out.append(Violation("graph", "cores", used, f"{resources.cores_per_chip} neuro-cores per chip"))
    return out


def _neurons_per_core(fan_in: int, r: Resources) -> int:
    return min(r.neurons_per_core, r.synapse_memory_bits_per_core // (fan_in * r.bits_per_synapse))


def estimate(chain: Chain, resources: Resources = Resources()) -> dict:
    """Cores per layer of a chain (see :func:`estimate_layers`)."""
    return estimate_layers([(layer.name, *layer.weight.shape) for layer in chain.layers], resources)


def estimate_layers(shapes: list[tuple[str, int, int]], resources: Resources = Resources()) -> dict:
    """Cores per (name, neurons, fan-in) layer under a simple partitioning: each layer on its own cores, as many
    neurons per core as both the neuron limit and the synaptic memory (fan-in x bits per dense synapse) allow;
    no sharing between layers."""
    layers, total = [], 0
    for name, n_out, fan_in in shapes:
        per_core = max(1, _neurons_per_core(fan_in, resources))
        cores = math.ceil(n_out / per_core)
        synapses = n_out * fan_in
        layers.append({"layer": name, "neurons": n_out, "fan_in": fan_in, "synapses": synapses,
                       "cores": cores, "neurons_per_core": math.ceil(n_out / cores),
                       "synapse_memory_utilisation": round(synapses * resources.bits_per_synapse
                                                           / (cores * resources.synapse_memory_bits_per_core), 4)})
        total += cores
    return {"cores": total, "chip_utilisation": round(total / resources.cores_per_chip, 4), "layers": layers,
            "resources": asdict(resources)}


def activity(chain: Chain, input_spikes: np.ndarray, layer_spikes: list[np.ndarray],
             energy: Energy = Energy()) -> dict:
    """Per layer spike counts, synaptic operations, sparsity and an energy estimate, per inference (sample).

    ``input_spikes`` (B, n_steps, inputs); ``layer_spikes`` per layer (B, n_steps, N_l). A spike into layer l is
    one synaptic operation per target neuron (dense fan-out). Energy (an estimate, Loihi 1 figures): SynOps x
    E_synop + neuron updates (every neuron, every step; active if it spiked) + spikes x E_spike.
    """
    B, n = input_spikes.shape[:2]
    sources = [input_spikes] + list(layer_spikes[:-1])
    layers, synops, spikes, active, updates = [], 0.0, 0.0, 0.0, 0.0
    for layer, src, s in zip(chain.layers, sources, layer_spikes):
        n_out = layer.weight.shape[0]
        ops = float(src.sum()) * n_out / B
        count = float(s.sum()) / B
        layers.append({"layer": layer.name, "spikes": round(count, 2), "synops": round(ops, 1),
                       "sparsity": round(1 - count / (n_out * n), 4)})
        synops, spikes = synops + ops, spikes + count
        active += count
        updates += n_out * n
    pj = (synops * energy.synop_pj + active * energy.neuron_update_active_pj
          + (updates - active) * energy.neuron_update_inactive_pj + spikes * energy.spike_pj)
    return {"per_inference": {"synops": round(synops, 1), "spikes": round(spikes, 2),
                              "input_spikes": round(float(input_spikes.sum()) / B, 2),
                              "sparsity": round(1 - spikes / updates, 4),
                              "energy_uj_estimate": round(pj * 1e-6, 4)},
            "layers": layers, "time_steps": {"bins": chain.n_bins, "delay_steps": len(chain.layers),
                                             "latency_steps": n, "latency_s": n * chain.dt},
            "energy_source": "estimate from Loihi 1 per-operation energies, Davies et al., IEEE Micro 2018 "
                             "(Loihi 2 figures are not published)", "energy_pj_per_op": asdict(energy)}
