"""Loihi 2's limits as data, a check of a network against them, a resource estimate and an energy estimate.

Parameter limits are those of Lava's bit-accurate models, which are what CI runs; chip resources and energy are
public figures, approximate where Intel publishes no exact number, and every one of them is configurable.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


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
    # time steps per inference (T + depth for our networks). Loihi 2 has no hardware bound: the host runs as many
    # steps as it asks for. This is the bound this tool simulates and stores test vectors for, a setting with a
    # default that admits the NIR paper's N-MNIST CNN at its native 1 ms bins (300 steps, run there on Loihi 2;
    # Pedersen et al., Nat. Commun. 2024). Runs bound their training frames by data.max_bins below it.
    max_steps: int = 1024


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


def check(net, limits: Limits = Limits(), resources: Resources = Resources()) -> list[Violation]:
    """Every integer of ``net`` (a :class:`hardware.graph.ir.Network`) outside Loihi 2's limits, and layers that cannot
    fit a core or the chip."""
    L, out = limits, []
    for p in net.projections:
        name = p.name if p.source != "bias" else f"bias->{p.target}"
        out += _range(name, "weight_mantissa", p.synapse.weight, L.weight_min, L.weight_max,
                      "8-bit signed weight mantissa")
        out += _range(name, "weight_exp", p.synapse.exp, L.weight_exp_min, L.weight_exp_max, "weight exponent")
        out += _range(name, "delay", p.delay, 1, L.delay_max + 1, "synaptic delay in steps (1 = one step)")
    for name, pop in net.populations.items():
        out += _range(name, "du", pop.du, 0, L.decay_max, "12-bit current decay")
        out += _range(name, "dv", pop.dv, 0, L.decay_max, "12-bit voltage decay")
        out += _range(name, "vth", pop.vth, 0, L.vth_max, "17-bit threshold mantissa")
        out += _range(name, "bias_mant", pop.bias_mant, L.bias_mant_min, L.bias_mant_max,
                      "13-bit signed bias mantissa")
        out += _range(name, "bias_exp", pop.bias_exp, 0, L.bias_exp_max, "3-bit bias exponent")
    return out + structure(net, limits, resources, out)


def structure(net, limits: Limits = Limits(), resources: Resources = Resources(), found=()) -> list[Violation]:
    """What the network's shape alone decides, whatever its weights: time steps per inference, layers that fit
    no core (fan-in), cores per chip. Fan-in and cores are estimated only when nothing else (``found``) is out
    of range. ``pipeline run`` checks this on the untrained network before any data is read."""
    out = []
    if net.n_steps is not None and net.n_steps > limits.max_steps:
        out.append(Violation("graph", "n_steps", net.n_steps, f"configured maximum of {limits.max_steps} time steps"))
    if not out and not found:
        est = estimate(net, resources)
        out += [Violation(row["layer"], "fan_in", row["fan_in"], row["unfit"]) for row in est["layers"]
                if row.get("unfit")]
        if not out and est["cores"] > resources.cores_per_chip:
            out.append(Violation("graph", "cores", est["cores"], f"{resources.cores_per_chip} neuro-cores per chip"))
    return out


def _neurons_per_core(fan_in: int, r: Resources, delay_bits: int = 0) -> int:
    return min(r.neurons_per_core,
               r.synapse_memory_bits_per_core // max(1, fan_in * (r.bits_per_synapse + delay_bits)))


def _dense_layer(name: str, n_out: int, fan_in: int, r: Resources, max_delay: int = 1) -> dict:
    """Each neuron stores its fan-in as dense 8-bit synapses; as many neurons per core as memory allows. Delays
    beyond the synapse's own step cost each synapse a delay field wide enough for the longest (6 bits for 62
    steps) and each neuron a ring buffer of one input accumulator per step of delay (``delay_slots``): how
    Loihi stores them; the sizes of Loihi 2's fields and buffers are not published, so this is an estimate."""
    delay_bits = (max_delay - 1).bit_length()
    row = {"layer": name, "kind": "dense", "neurons": n_out, "fan_in": fan_in, "synapses": n_out * fan_in,
           "unrolled_synapses": n_out * fan_in, "input_axons": fan_in,
           **({"delay_bits_per_synapse": delay_bits, "delay_slots_per_neuron": max_delay} if delay_bits else {})}
    if fan_in > r.axons_per_core:
        return {**row, "cores": 0, "unfit": f"{r.axons_per_core} input axons per core"}
    per_core = _neurons_per_core(fan_in, r, delay_bits)
    if per_core < 1:
        return {**row, "cores": 0, "unfit": "the synaptic memory of one core for one neuron"}
    cores = math.ceil(n_out / per_core)
    return {**row, "cores": cores, "neurons_per_core": math.ceil(n_out / cores),
            "synapse_memory_utilisation": round(n_out * fan_in * (r.bits_per_synapse + delay_bits)
                                                / (cores * r.synapse_memory_bits_per_core), 4)}


def _conv_layer(name: str, conv, r: Resources) -> dict:
    """A convolution's kernel is shared: a core holds c output channels of a tile of t x u output positions and
    stores those channels' kernels once (c x C_in/groups x kh x kw 8-bit synapses); its input axons are the input
    positions the tile's receptive fields cover (padding excluded), for the input channels of those channels'
    groups. We take the c, t, u that use the fewest cores."""
    co, cg, kh, kw = conv.weight.shape
    ci, h, w = conv.in_shape
    _, ho, wo = conv.out_shape
    (sh, sw), (dh, dw) = conv.stride, conv.dilation
    per_group = co // conv.groups
    kernel_bits = cg * kh * kw * r.bits_per_synapse
    row = {"layer": name, "kind": f"conv {kh}x{kw}/{sh}" + (f" ({conv.pool} pool)" if conv.pool else ""),
           "neurons": co * ho * wo, "fan_in": cg * kh * kw, "synapses": co * cg * kh * kw,
           "unrolled_synapses": int(co * ho * wo * cg * kh * kw)}
    best = None
    for c in range(1, co + 1):
        if c * kernel_bits > r.synapse_memory_bits_per_core:
            break
        channels_in = min(conv.groups, -(-c // per_group) + (1 if c % per_group and per_group > 1 else 0)) * cg
        for t in range(1, ho + 1):
            rows_in = min(h, (t - 1) * sh + (kh - 1) * dh + 1)
            cols_max = r.axons_per_core // (channels_in * rows_in)
            u = min(wo, r.neurons_per_core // (c * t), (cols_max - (kw - 1) * dw - 1) // sw + 1 if cols_max else 0)
            if u < 1:
                break
            cores = -(-co // c) * -(-ho // t) * -(-wo // u)
            if best is None or cores < best[0]:
                best = (cores, c, t, u, channels_in * rows_in * min(w, (u - 1) * sw + (kw - 1) * dw + 1))
    if best is None:
        return {**row, "cores": 0, "input_axons": ci * h * w,
                "unfit": "one core, even for one output channel and one output position"}
    cores, c, t, u, axons = best
    return {**row, "cores": cores, "neurons_per_core": c * t * u, "channels_per_core": c, "rows_per_core": t,
            "columns_per_core": u, "input_axons": axons,
            "synapse_memory_utilisation": round(c * kernel_bits / r.synapse_memory_bits_per_core, 4)}


def estimate(net, resources: Resources = Resources()) -> dict:
    """Cores per population: each on its own cores (no sharing between layers). A population fed by one
    convolution is partitioned as one (:func:`_conv_layer`); otherwise every incoming synapse is stored dense
    (convolutions unrolled), as many neurons per core as the neuron limit and the synaptic memory allow."""
    layers = []
    for name, pop in net.populations.items():
        incoming = [p for p in net.projections if p.target == name and p.source != "bias"]
        if len(incoming) == 1 and incoming[0].synapse.kind == "conv":
            layers.append(_conv_layer(name, incoming[0].synapse, resources))
        else:
            fan_in = sum(p.synapse.in_size for p in incoming) + any(p.source == "bias" for p in net.projections
                                                                     if p.target == name)
            layers.append(_dense_layer(name, pop.size, fan_in, resources,
                                       max((p.max_delay for p in incoming), default=1)))
    total = sum(row["cores"] for row in layers)
    return {"cores": total, "chip_utilisation": round(total / resources.cores_per_chip, 4), "layers": layers,
            "resources": asdict(resources)}


def estimate_unrolled(net, resources: Resources = Resources()) -> dict:
    """Cores if every convolution were unrolled into a dense matrix over its whole input (what counting unrolled
    synapses gives; input axons not checked), for comparison with :func:`estimate`."""
    total = 0
    for name, pop in net.populations.items():
        fan_in = sum(p.synapse.in_size for p in net.projections if p.target == name)
        total += math.ceil(pop.size / max(1, _neurons_per_core(fan_in, resources)))
    return {"cores": total}


def fan_out(synapse, nonzero: bool = False) -> np.ndarray:
    """Per source neuron: how many target neurons one of its spikes reaches (a synaptic operation each): every
    neuron of a dense layer; for a convolution, the output positions whose kernel window covers the source.
    ``nonzero``: only through non-zero weights (NeuroBench's effective operations)."""
    if synapse.kind == "dense":
        if nonzero:
            return np.count_nonzero(synapse.weight, axis=0).astype(np.int64)
        return np.full(synapse.in_size, synapse.out_size, dtype=np.int64)
    co, cg, kh, kw = synapse.weight.shape
    ci, h, w = synapse.in_shape
    _, ho, wo = synapse.out_shape
    per = co // synapse.groups
    out = np.zeros(synapse.in_shape, dtype=np.int64)
    nz = synapse.weight != 0 if nonzero else np.ones(synapse.weight.shape, bool)
    for g in range(synapse.groups):
        for c in range(cg):
            for i in range(kh):
                ys = np.arange(ho) * synapse.stride[0] - synapse.padding[0] + i * synapse.dilation[0]
                ys = ys[(ys >= 0) & (ys < h)]
                for j in range(kw):
                    n = int(nz[g * per:(g + 1) * per, c, i, j].sum())
                    if not n:
                        continue
                    xs = np.arange(wo) * synapse.stride[1] - synapse.padding[1] + j * synapse.dilation[1]
                    xs = xs[(xs >= 0) & (xs < w)]
                    out[g * cg + c][np.ix_(ys, xs)] += n
    return out.ravel()


@dataclass(frozen=True)
class LayerLoad:
    layer: str
    spikes: float                   # per inference (sample)
    synops: float                   # synaptic operations per inference
    sparsity: float                 # 1 - spikes / (neurons x steps)


@dataclass(frozen=True)
class Activity:
    """Spikes, synaptic operations, sparsity and the energy estimate per inference, unrounded; :meth:`to_dict`
    renders them (rounded) for report.json."""
    synops: float
    spikes: float
    input_spikes: float
    sparsity: float
    energy_pj: float
    layers: tuple[LayerLoad, ...]
    bins: int
    delay_steps: int
    latency_steps: int
    latency_s: float
    energy: Energy

    def to_dict(self) -> dict:
        return {"per_inference": {"synops": round(self.synops, 1), "spikes": round(self.spikes, 2),
                                  "input_spikes": round(self.input_spikes, 2), "sparsity": round(self.sparsity, 4),
                                  "energy_uj_estimate": round(self.energy_pj * 1e-6, 4)},
                "layers": [{"layer": L.layer, "spikes": round(L.spikes, 2), "synops": round(L.synops, 1),
                            "sparsity": round(L.sparsity, 4)} for L in self.layers],
                "time_steps": {"bins": self.bins, "delay_steps": self.delay_steps,
                               "latency_steps": self.latency_steps, "latency_s": self.latency_s},
                "energy_source": "estimate from Loihi 1 per-operation energies, Davies et al., IEEE Micro 2018 "
                                 "(Loihi 2 figures are not published)", "energy_pj_per_op": asdict(self.energy)}


def activity(net, input_spikes: np.ndarray, spikes: dict[str, np.ndarray], energy: Energy = Energy()) -> Activity:
    """Per layer spike counts, synaptic operations, sparsity and an energy estimate, per inference (sample).

    ``input_spikes`` (B, n_steps, inputs); ``spikes`` per population (B, n_steps, N). A spike is one synaptic
    operation per target neuron it reaches (dense: every neuron of the layer; conv: the kernel's footprint).
    Energy (an estimate, Loihi 1 figures): SynOps x E_synop + neuron updates (every neuron, every step; active if
    it spiked) + spikes x E_spike."""
    B, n = input_spikes.shape[:2]
    counts = {"input": input_spikes.reshape(B * n, -1).sum(axis=0)}
    counts.update({k: s.reshape(B * n, -1).sum(axis=0) for k, s in spikes.items()})
    layers, synops, total_spikes, updates = [], 0.0, 0.0, 0.0
    for name, pop in net.populations.items():
        ops = sum(float(counts[p.source] @ fan_out(p.synapse)) for p in net.projections
                  if p.target == name and p.source != "bias") / B
        count = float(spikes[name].sum()) / B
        layers.append(LayerLoad(name, count, ops, 1 - count / (pop.size * n)))
        synops, total_spikes = synops + ops, total_spikes + count
        updates += pop.size * n
    pj = (synops * energy.synop_pj + total_spikes * energy.neuron_update_active_pj
          + (updates - total_spikes) * energy.neuron_update_inactive_pj + total_spikes * energy.spike_pj)
    return Activity(synops, total_spikes, float(input_spikes.sum()) / B, 1 - total_spikes / updates, pj,
                    tuple(layers), net.n_bins, max(net.depth.values(), default=0), n, n * net.dt, energy)
