"""Discretised float populations and synapses -> Loihi 2 integers, with the error it costs measured.

Per population, v is scaled by lambda_i = vth * 64 / theta_i with one 17-bit vth for the population (Lava's LIF
has one), so per-neuron thresholds become per-neuron weight scales. Each incoming projection gets 8-bit weight
mantissas and one exponent. Decays become Lava's 12-bit du, dv (u keeps (4095 - du) / 4096, v keeps
(4096 - dv) / 4096); v_leak and v_reset become a 13-bit bias mantissa with a 3-bit exponent per neuron and an
initial v. Biases of Affine and Conv nodes arrive through a projection from an always-on source.

Convolutions stay convolutions when the per-neuron factor lambda * G is one value per output channel (else they
are unrolled, exactly). Lava's ``Conv`` model applies no weight exponent, so a convolution is quantised with an
exponent >= 0; when its kernel is small, the population's threshold mantissa is raised instead (up to 17 bits),
which keeps the kernel's precision.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph.discretise import FloatNeurons
from hardware.graph.ir import (
    Conv,
    Dense,
    FloatModel,
    FloatPopulation,
    Neurons,
    Projection,
)
from hardware.graph.linear_ops import conv_matrix

VTH = 2048            # threshold mantissa we aim for: v's threshold at 2**17, 6 bits of headroom in 24-bit state


def _int_range(x: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, round(x))))


def _scaled(p: Projection, factor: np.ndarray) -> Dense | Conv:
    """The float synapse with each output neuron's row multiplied by ``factor`` (a Conv while that is one value
    per output channel)."""
    syn = p.synapse
    if isinstance(syn, Conv):
        per = factor.reshape(syn.out_shape[0], -1)
        if np.all(per == per[:, :1]):
            return replace(syn, weight=syn.weight * per[:, 0, None, None, None])
        syn = Dense(conv_matrix(syn), 0)
    return Dense(factor[:, None] * syn.weight, 0)


def _peak(syn: Dense | Conv) -> float:
    return float(np.abs(syn.weight).max(initial=0.0))


def _exponent(w: np.ndarray, limits: Limits) -> int:
    """The smallest exponent whose 8-bit mantissas hold ``w``: int8 is asymmetric, so -128 * 2**e fits where
    +128 * 2**e does not (a graph of ours, read through its continuous fields, then gets its own integers back)."""
    hi, lo = float(w.max(initial=0.0)), float(w.min(initial=0.0))
    need = max(hi / limits.weight_max, lo / limits.weight_min)
    return 0 if need <= 0 else math.ceil(math.log2(need))


def _bias(name: str, bias_f: np.ndarray, limits: Limits, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron bias mantissas and exponents for a float bias (clipped to Loihi 2's range, with a note)."""
    lo, hi = limits.bias_mant_min << limits.bias_exp_max, limits.bias_mant_max << limits.bias_exp_max
    if np.any((bias_f < lo) | (bias_f > hi)):
        notes.append(f"{name}: bias clipped to Loihi 2's range [{lo}, {hi}] (the error table shows by how much)")
    clipped = np.clip(bias_f, lo, hi)
    b = np.rint(clipped).astype(np.int64)
    e = np.zeros_like(b)
    big = np.abs(b) > limits.bias_mant_max
    e[big] = np.minimum(limits.bias_exp_max, np.ceil(np.log2(np.abs(b[big]) / limits.bias_mant_max)))
    return np.clip(np.rint(clipped / 2.0**e), limits.bias_mant_min, limits.bias_mant_max).astype(np.int64), e


def quantise(pops: dict[str, FloatNeurons], projections: list[Projection], limits: Limits,
             notes: list[str]) -> tuple[dict[str, Neurons], tuple[Projection, ...], FloatModel]:
    """Integer populations and projections (same order) and the float model they approximate."""
    out_pops, float_pops, scaled = {}, {}, {}
    for name, pop in pops.items():
        incoming = [i for i, p in enumerate(projections) if p.target == name]
        g = pop.gain
        if pop.spiking:
            scale = VTH * 64.0 / pop.theta
        else:       # no threshold to scale by: put the largest input at a full 8-bit mantissa with exponent 6
            peak = max((_peak(_scaled(projections[i], g)) for i in incoming), default=0.0)
            scale = np.full(pop.size, 127.0 * 64 / peak if peak > 0 else 1.0)
        vth = VTH
        with np.errstate(over="ignore", invalid="ignore"):
            syns = {i: _scaled(projections[i], scale * g / 64.0) for i in incoming}
            need = max((_peak(s) for s in syns.values()), default=0.0)
        if need > 0 and math.log2(need / 127) > limits.weight_exp_max:
            shrink = 2 ** math.ceil(math.log2(need / 127) - limits.weight_exp_max) if math.isfinite(need) else math.inf
            if shrink > vth:
                raise GraphError(f"node {name!r}: its input weights are up to {need / VTH:.3g} times its threshold; "
                                 f"Loihi 2's 8-bit weights with exponent <= {limits.weight_exp_max} cannot reach "
                                 "that even with threshold mantissa 1")
            vth, scale = max(1, vth // shrink), scale / shrink
            notes.append(f"{name}: threshold mantissa lowered to {vth} so that its weights fit exponent "
                         f"{limits.weight_exp_max}")
        convs = [s for s in syns.values() if isinstance(s, Conv) and _peak(s) > 0]
        small = min((_exponent(s.weight, limits) for s in convs), default=0)
        if pop.spiking and small < 0:
            grow = 2 ** min(-small, int(math.log2(limits.vth_max // vth)))
            if grow > 1:
                vth, scale = vth * grow, scale * grow
                notes.append(f"{name}: threshold mantissa raised to {vth} so that its convolution kernel keeps its "
                             "8 bits with exponent 0 (Lava's Conv applies no exponent)")
        syns = {i: _scaled(projections[i], scale * g / 64.0) for i in incoming}
        scaled.update(syns)
        theta = scale * pop.theta if pop.spiking else pop.theta
        bias_f, v0_f = scale * pop.bias, scale * pop.v0
        mant, e = _bias(name, bias_f, limits, notes)
        top = 2 ** (limits.state_bits - 1) - 1
        out_pops[name] = Neurons(name, pop.shape, _int_range(4095 - 4096 * pop.alpha, 0, limits.decay_max),
                                 _int_range(4096 - 4096 * pop.beta, 0, limits.decay_max),
                                 vth if pop.spiking else limits.vth_max, mant, e,
                                 np.clip(np.rint(v0_f), -top, top).astype(np.int64), pop.spiking, pop.kind)
        float_pops[name] = FloatPopulation(pop.alpha, pop.beta, theta, bias_f, v0_f, scale)
    out_proj = []
    for i, p in enumerate(projections):
        syn = scaled[i]
        exp = _exponent(syn.weight, limits)
        exp = int(min(limits.weight_exp_max, max(0 if isinstance(syn, Conv) else limits.weight_exp_min, exp)))
        q = np.clip(np.rint(syn.weight / 2.0**exp), limits.weight_min, limits.weight_max).astype(np.int64)
        if p.max_delay - 1 > limits.delay_max:
            raise GraphError(f"projection {p.name}: delay {p.max_delay} steps exceeds Loihi 2's {limits.delay_max + 1}")
        out_proj.append(replace(p, synapse=replace(syn, weight=q, exp=exp)))
    return out_pops, tuple(out_proj), FloatModel(float_pops, tuple(scaled[i].weight for i in range(len(projections))))


def error_table(net) -> list[dict]:
    """Per population: how far the integers are from the discretised float graph."""
    fm = net.float_model
    rows = []
    for name, pop in net.populations.items():
        f = fm.populations[name]
        incoming = [(p, fm.weights[i]) for i, p in enumerate(net.projections) if p.target == name]
        num = sum(float(np.sum((p.synapse.weight * 2.0**p.synapse.exp - w) ** 2)) for p, w in incoming)
        den = sum(float(np.sum(w ** 2)) for _, w in incoming)
        # exact: the float weights are the integers times 2**exp up to the float noise of reading them (< 1e-6 of
        # one mantissa step), e.g. a graph of ours read through its continuous fields; the remainder is not a
        # quantisation error, and it rounds differently from one processor to the next
        exact = all(np.all(np.abs(w / 2.0**p.synapse.exp - p.synapse.weight) <= 1e-6) for p, w in incoming)
        keep_u, keep_v = (4095 - pop.du) / 4096, (4096 - pop.dv) / 4096
        thr = float(np.max(np.abs(pop.vth * 64 - f.theta) / f.theta)) if pop.spiking else 0.0
        rows.append({"layer": name, "type": pop.kind, "neurons": pop.size, "projections": len(incoming),
                     "kinds": ",".join(p.synapse.kind for p, _ in incoming),
                     "weight_exp": ",".join(str(p.synapse.exp) for p, _ in incoming),
                     "weights_exact": exact,
                     "weight_rel_rms_error": 0.0 if exact or not den else math.sqrt(num / den),
                     "du": pop.du, "dv": pop.dv, "current_decay_error": abs(keep_u - f.alpha),
                     "voltage_decay_error": abs(keep_v - f.beta), "vth": pop.vth,
                     "threshold_rel_error": thr,
                     "bias_max_abs_error_lsb": float(np.max(np.abs(pop.bias - f.bias))) if pop.size else 0.0})
    return rows
