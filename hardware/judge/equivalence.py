"""The one verification stage of run, verify and recheck: every backend against the expected spikes.

:func:`verify` runs the backends on the same input spikes and compares each with the expected trace at every
(sample, step, layer, neuron) position the backend computed: a sample's own steps and, where a backend computes
them (batched Lava, before each layer's reset), the steps past the sample's end. It returns a frozen
:class:`Verification`: per backend what it was compared against, whether that comparison certifies anything,
samples compared and identical, the first divergence, voltages of non-spiking readouts, what it did not
compute; per layer its activity and, when silent, the likely cause; and the one verdict with its exit status.
report.json, certificate.json, report.html and the printed summaries are rendered from it, never recomputed.

A comparison certifies only when the backend is independent of what produced the expected spikes: the integer
reference against the golden model (PyTorch) is a check; the integer reference replaying its own stored output
is a reproduction, reported as such and never counted as a check. Float models (the discretised graph before
quantisation, model_float.onnx) are measured against the expected spikes and never part of a verdict.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from hardware.backends import Backend, Options, samples_run
from hardware.graph.ir import Network
from hardware.judge.results import (
    BackendComparison,
    Divergence,
    Expected,
    LayerActivity,
    LayerComparison,
    Measured,
    Role,
    Verdict,
    Verification,
)
from hardware.judge.trace import Trace

Simulate = Callable[[Backend, np.ndarray], Trace]


def tail_steps(net: Network) -> int:
    """Steps past a sample's end that a batched backend computes for its deepest layer before that layer's reset
    (``hardware/backends/lava.py``): the network's depth - 1."""
    return max(net.depth.values()) - 1


def reference_expected(net: Network, x: np.ndarray, by: str = "reference",
                       description: str = "integer reference, on the same input spikes") -> Expected:
    """The integer reference's spikes for ``x`` (B, steps, inputs), run on past each sample's end with no input
    for :func:`tail_steps` more steps, as the expected trace."""
    from hardware.backends import reference
    xs = np.concatenate([x, np.zeros((x.shape[0], tail_steps(net), x.shape[2]), x.dtype)], axis=1)
    return Expected(reference.simulate(net, xs), by, description)


def verify(net: Network, x: np.ndarray, expected: Expected, backends: Sequence[Backend], options: Options,
           measured: Sequence[Measured] = (), simulate: Simulate | None = None, hint: str = "") -> Verification:
    """Run ``backends`` on input spikes ``x`` (B, steps, inputs) and compare each with ``expected``.

    ``simulate(backend, x)`` runs one backend (default: in this process; under torchrun: shared across ranks).
    ``hint`` is added to the cause of a layer that input reached but that never crossed its threshold."""
    import time
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"nothing to compare: input of shape {x.shape}")
    simulate = simulate or (lambda b, xs: b.simulate(net, xs, options))
    steps = x.shape[1]
    names = list(net.populations)
    rows, traces = [], {}
    for b in backends:
        t0 = time.perf_counter()
        m, why = samples_run(b, net, x, options)
        trace = simulate(b, x[:m])
        traces[b.name] = trace
        own = b.name == expected.by
        against = expected if m == len(x) else Expected(expected.trace.take(np.arange(m)), expected.by,
                                                         expected.description)
        row = compare(names, against, trace, steps, b.name, b.title, Role.REPRODUCES if own else Role.CERTIFIES,
                      "a reproduction of its own stored output, not an independent check" if own else "")
        row = replace(row, seconds=time.perf_counter() - t0)
        if m < len(x):
            row = replace(row, not_computed=row.not_computed + (
                f"samples {m}-{len(x) - 1} ({len(x) - m} of {len(x)}) not run: {why}",))
        rows.append(row)
    for m in measured:
        traces[m.title] = m.trace
        rows.append(compare(names, expected, m.trace, steps, m.title, m.title, Role.MEASURED, f"measured: {m.why}"))
    layers = activity(net, x, expected.trace.window(steps), measured, hint)
    silent_out = all(L.silent for L in layers if L.layer in net.readout)
    certifying = [r for r in rows if r.certifies]
    if any(r.identical < r.compared for r in certifying):
        verdict = Verdict.DIVERGED
    elif silent_out:
        verdict = Verdict.SILENT
    else:
        verdict = Verdict.IDENTICAL if certifying else Verdict.REFERENCE_ONLY
    return Verification(expected.by, expected.description, int(x.shape[0]), steps,
                        expected.trace.spikes[names[0]].shape[1] - steps, tuple(net.readout), tuple(layers),
                        tuple(rows), verdict, {"expected": expected.trace, **traces})


def compare(names: list[str], expected: Expected, got: Trace, steps: int, name: str, title: str,
            role: Role = Role.CERTIFIES, why_not: str = "") -> BackendComparison:
    """One backend's trace against the expected one, at every position the backend computed (and the voltage of
    every non-spiking readout, except for a measured float model, whose voltages are in other units)."""
    voltages = role is not Role.MEASURED
    exp = expected.trace
    B = exp.samples
    if got.samples != B:
        raise ValueError(f"{name}: {got.samples} samples, expected {B}")
    same = np.ones(B, bool)
    first: Divergence | None = None
    layers, not_computed, skips = [], [], []
    for k in names:
        e, g = exp.spikes[k], got.spikes[k]
        n = min(e.shape[1], g.shape[1])
        mask = got.mask(k)
        beyond = int(mask[:, n:].sum()) * g.shape[2]
        if beyond:
            not_computed.append(f"layer {k}: {beyond:,} positions computed past the expected steps, not compared")
        mask = mask[:, :n]
        skipped = ~mask[:, :steps]
        if skipped.any():
            rows, cols = np.nonzero(skipped)
            skips.append((k, f"{cols.min()}-{cols.max()}" if cols.max() > cols.min() else f"{cols.min()}",
                          len(np.unique(rows)), int((e[:, :steps] & skipped[:, :, None]).sum())))
        diff = (e[:, :n] != g[:, :n]) & mask[:, :, None]
        volt = None
        if voltages and k in exp.voltage:
            if k in got.voltage:
                vdiff = (exp.voltage[k][:, :n] != got.voltage[k][:, :n]) & mask[:, :, None]
            else:
                vdiff = np.broadcast_to(mask[:, :, None], e[:, :n].shape)
            volt = int(vdiff.sum())
            same &= ~vdiff.reshape(B, -1).any(axis=1)
            first = _earliest(first, vdiff, k, "v" if k in got.voltage else "v missing", steps)
        same &= ~diff.reshape(B, -1).any(axis=1)
        first = _earliest(first, diff, k, "spikes", steps)
        compared = mask[:, :, None] & np.ones(e.shape[2], bool)
        layers.append(LayerComparison(k, int((e[:, :n] & compared).sum()), int((g[:, :n] & compared).sum()),
                                      int(diff.sum()), tuple(int(v) for v in diff.sum(axis=(0, 2))),
                                      int(mask.sum()) * e.shape[2], int(mask[:, steps:].sum()) * e.shape[2], volt))
    tails, tail_samples = _tails_not_computed(names, exp, got, steps)
    if tails:
        not_computed.append(tails)
    if skips:
        spiking = sum(sp for *_, sp in skips)
        not_computed.append(
            "the first steps of " + ", ".join(f"layer {k} (step {st}, {ns} samples)" for k, st, ns, _ in skips)
            + " were not computed for the sample: the backend spent them finishing the previous sample, whose tail "
            "is compared there; the expected trace has " + ("no spike at these positions" if spiking == 0 else
                                                           f"{spiking:,} spikes at these positions, not compared"))
    against = f"its own output as stored ({expected.description})" if role is Role.REPRODUCES else \
        expected.description
    return BackendComparison(name, title, against, role, why_not, B, int(same.sum()), first, tuple(layers),
                             tuple(not_computed), tuple(int(i) for i in np.flatnonzero(~same)), 0.0, tail_samples)


def _tails_not_computed(names: list[str], exp: Trace, got: Trace, steps: int) -> tuple[str, int]:
    """For a backend that computes steps past a sample's end (batched Lava): which of the expected tail positions
    it did not compute, per layer (a layer at depth d computes d - 1 such steps before its reset) and per sample
    (the last sample of each batch has none: the run stops with it). "" when it computes no tail at all, or all
    of it; and how many samples had a position past their end computed."""
    per_layer, any_tail = [], np.zeros(exp.samples, bool)
    for k in names:
        n = min(exp.spikes[k].shape[1], got.spikes[k].shape[1])
        expected_tail = exp.spikes[k].shape[1] - steps
        done = got.mask(k)[:, steps:n]
        any_tail |= done.any(axis=1)
        most = int(done.sum(axis=1).max(initial=0))
        if most < expected_tail:
            per_layer.append(f"{k} {most} of {expected_tail}")
    if not any_tail.any() or (not per_layer and any_tail.all()):
        return "", int(any_tail.sum())
    missing = np.flatnonzero(~any_tail)
    parts = []
    if per_layer:
        parts.append("steps past each sample's end computed per layer (a layer at depth d computes d - 1 of them "
                     "before its reset): " + ", ".join(per_layer))
    if len(missing):
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        parts.append(f"samples {shown} ({len(missing)} of {exp.samples}, the last of each batch: the run stops with "
                     "them) have no step past their end computed")
    return "tails: " + "; ".join(parts) + "; the rest of the expected tail is not compared", int(any_tail.sum())


def _earliest(first: Divergence | None, diff: np.ndarray, layer: str, observable: str,
              steps: int) -> Divergence | None:
    where = np.argwhere(diff)
    if not len(where):
        return first
    b, t, k = (int(v) for v in where[np.lexsort((where[:, 1], where[:, 0]))[0]])
    if first is None or (b, t) < (first.sample, first.step):
        return Divergence(b, t, layer, k, observable, steps)
    return first


def activity(net: Network, x: np.ndarray, expected: Trace, measured: Sequence[Measured] = (),
             hint: str = "") -> list[LayerActivity]:
    """Per population: expected spikes over the samples' own steps, spikes reaching it, and for a silent one
    (a spiking population that never spiked, or a non-spiking readout that no spike reached) the likely cause."""
    counts = {"input": int(x.sum()), **{k: int(s.sum()) for k, s in expected.spikes.items()}}
    peak = dict(expected.peak)
    out = []
    for k, pop in net.populations.items():
        sources = {p.source: counts[p.source] for p in net.projections if p.target == k and p.source != "bias"}
        received = sum(sources.values())
        silent = counts[k] == 0 if pop.spiking else received == 0
        cause = ""
        if silent:
            if received == 0:
                cause = "no spike reaches it: " + ", ".join("the input has no spikes" if s == "input" else
                                                            f"{s} is silent" for s, c in sources.items() if c == 0)
            else:
                if k not in peak:
                    from hardware.backends import reference
                    peak = reference.simulate(net, x).peak
                cause = (f"{received:,} input spikes reached it, but no neuron crossed its threshold: the highest "
                         f"voltage was {100 * peak[k]:.1f}% of the threshold" + (f"; {hint}" if hint else ""))
            for m in measured:
                n = int(m.trace.spikes[k][:, :x.shape[1]].sum())
                if n and pop.spiking:
                    cause += f" (the {m.title} spikes {n:,} times here" + (f": {m.silence_note})" if m.silence_note
                                                                            else ")")
        out.append(LayerActivity(k, pop.size, pop.spiking, counts[k], received, silent, cause))
    return out
