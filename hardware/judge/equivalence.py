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

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from hardware.backends import Backend, Options, samples_run
from hardware.graph.ir import Network
from hardware.judge.trace import Trace

# verdict: (exit status, meaning), in order of severity: a combined verdict is the most severe of its parts
VERDICTS: dict[str, tuple[int, str]] = {
    "IDENTICAL": (0, "every certifying backend reproduced the expected spikes at every position it computed"),
    "REFERENCE ONLY": (0, "no independent backend was compared: the integer reference alone (verify --target "
                          "reference), or replaying its own stored output; nothing is certified"),
    "SILENT": (3, "identical, but every readout stayed silent in every compared sample: identical silence "
                  "certifies nothing"),
    "DIVERGED": (1, "a certifying backend differed from the expected spikes (the first divergence is named), "
                    "or a Lava run failed"),
    "TAMPERED": (1, "recheck: a certified file is missing or changed, so nothing was run on it"),
}


def exit_code(verdict: str) -> int:
    return VERDICTS[verdict][0]


def worst(*verdicts: str) -> str:
    """The most severe of several verdicts (e.g. a certificate's and its replay's)."""
    order = list(VERDICTS)
    return max(verdicts, key=order.index)


@dataclass(frozen=True)
class Expected:
    """What every backend is compared against: spikes (B, steps, N) of every population (steps may run past the
    samples' own steps: their tails), voltages of non-spiking readouts, and what produced them."""
    trace: Trace
    by: str                 # the backend (or model) that produced it: "golden", "reference", ...
    description: str        # e.g. "golden model: model.pt in integer mode (PyTorch), on the same input spikes"


@dataclass(frozen=True)
class Measured:
    """A float model compared with the expected spikes for information only (never part of a verdict)."""
    title: str
    trace: Trace
    why: str                # why it does not certify, e.g. "float: no integer truncation"
    silence_note: str = ""  # what it means when it spikes where the expected trace is silent


@dataclass(frozen=True)
class Divergence:
    sample: int
    step: int
    layer: str
    neuron: int
    observable: str = "spikes"      # or "v" (a non-spiking readout's voltage), "v missing"
    sample_steps: int = 0           # the sample's own steps: a later step lies past its end (its tail)

    def __str__(self) -> str:
        what = {"spikes": "", "v": "voltage, ", "v missing": "voltage missing from the backend, "}[self.observable]
        past = (f" (past the sample's {self.sample_steps} steps: what the backend computes there before its reset)"
                if self.sample_steps and self.step >= self.sample_steps else "")
        return f"sample {self.sample}, layer {self.layer}, {what}neuron {self.neuron}, step {self.step}{past}"

    def to_json(self) -> dict:
        return {"sample": self.sample, "step": self.step, "layer": self.layer, "neuron": self.neuron,
                "observable": self.observable, "past_sample_end": self.step >= self.sample_steps > 0}


@dataclass(frozen=True)
class LayerComparison:
    layer: str
    expected_spikes: int            # over the positions compared
    backend_spikes: int
    mismatched: int
    mismatched_per_step: tuple[int, ...]
    positions: int                  # (sample, step, neuron) positions compared
    tail_positions: int             # of which past the samples' own steps
    voltage_mismatched: int | None = None    # non-spiking readouts: positions whose voltage differs (or all, missing)


@dataclass(frozen=True)
class BackendComparison:
    backend: str
    title: str
    against: str                    # what it was compared against
    certifies: bool                 # False: measured (a float model) or a reproduction of its own output
    why_not: str                    # when it does not certify: why
    compared: int                   # samples
    identical: int                  # samples identical at every position compared
    first_divergence: Divergence | None
    layers: tuple[LayerComparison, ...]
    not_computed: tuple[str, ...]   # sample positions the backend did not compute, each named
    diverged: tuple[int, ...] = ()  # the samples that differ
    seconds: float = 0.0
    tail_samples: int = 0           # samples with a position past their end compared

    @property
    def verdict(self) -> str:
        if not self.certifies:
            return "MEASURED" if self.why_not.startswith("measured") else "REPRODUCED" \
                if self.identical == self.compared else "NOT REPRODUCED"
        return "IDENTICAL" if self.identical == self.compared else "DIVERGED"

    @property
    def tail_positions(self) -> int:
        return sum(L.tail_positions for L in self.layers)

    def to_json(self) -> dict:
        return {"title": self.title, "against": self.against, "certifies": self.certifies,
                **({"why_not": self.why_not} if not self.certifies else {}), "verdict": self.verdict,
                "compared": self.compared, "identical": self.identical,
                "first_divergence": self.first_divergence.to_json() if self.first_divergence else None,
                "first_divergence_text": str(self.first_divergence) if self.first_divergence else None,
                "diverged_samples": list(self.diverged[:100]),
                "positions_compared": sum(L.positions for L in self.layers),
                "tail_positions_compared": self.tail_positions, "tail_samples": self.tail_samples,
                "not_computed": list(self.not_computed),
                "seconds": round(self.seconds, 2),
                "layers": {L.layer: {"expected_spikes": L.expected_spikes, "backend_spikes": L.backend_spikes,
                                     "mismatched": L.mismatched, "mismatched_per_step": list(L.mismatched_per_step),
                                     **({"voltage_mismatched": L.voltage_mismatched}
                                        if L.voltage_mismatched is not None else {})}
                           for L in self.layers}}


@dataclass(frozen=True)
class LayerActivity:
    layer: str
    neurons: int
    spiking: bool                   # False: a non-spiking readout (silent when no spike reaches it)
    spikes: int                     # expected spikes over the compared samples' own steps
    received: int                   # spikes arriving from its sources
    silent: bool
    cause: str = ""

    def to_json(self, samples: int) -> dict:
        return {"layer": self.layer, "neurons": self.neurons, "spiking": self.spiking, "spikes": self.spikes,
                "spikes_per_sample": round(self.spikes / max(samples, 1), 2), "silent": self.silent,
                **({"cause": self.cause} if self.silent else {})}


@dataclass(frozen=True)
class Verification:
    expected_by: str
    expected: str                   # description of the expected spikes
    samples: int
    steps: int                      # each sample's own steps
    tail_steps: int                 # expected steps past each sample's end
    readout: tuple[str, ...]
    layers: tuple[LayerActivity, ...]
    backends: tuple[BackendComparison, ...]
    verdict: str
    traces: Mapping[str, Trace] = field(default_factory=dict, repr=False, compare=False)   # for plots, accuracy

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdict)

    @property
    def silent_layers(self) -> tuple[LayerActivity, ...]:
        return tuple(L for L in self.layers if L.silent)

    @property
    def certifying(self) -> tuple[BackendComparison, ...]:
        return tuple(b for b in self.backends if b.certifies)

    def backend(self, name: str) -> BackendComparison:
        return next(b for b in self.backends if b.backend == name)

    @property
    def not_compared(self) -> tuple[str, ...]:
        return tuple(f"{b.backend}: {line}" for b in self.backends for line in b.not_computed)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "exit_status": self.exit_code, "meaning": VERDICTS[self.verdict][1],
                "expected": {"by": self.expected_by, "description": self.expected},
                "samples": self.samples, "steps": self.steps, "tail_steps": self.tail_steps,
                "readout": list(self.readout),
                "backends": {b.backend: b.to_json() for b in self.backends},
                "layers": [L.to_json(self.samples) for L in self.layers],
                "silent_layers": [{"layer": L.layer, "samples": self.samples, "cause": L.cause}
                                  for L in self.silent_layers],
                "not_compared": list(self.not_compared)}


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
        row = compare(names, against, trace, steps, b.name, b.title, certifies=not own,
                      why_not="a reproduction of its own stored output, not an independent check" if own
                      else "", seconds=time.perf_counter() - t0)
        if m < len(x):
            row = replace(row, not_computed=row.not_computed + (
                f"samples {m}-{len(x) - 1} ({len(x) - m} of {len(x)}) not run: {why}",))
        rows.append(row)
    for m in measured:
        traces[m.title] = m.trace
        rows.append(compare(names, expected, m.trace, steps, m.title, m.title, certifies=False,
                            why_not=f"measured: {m.why}", voltages=False))
    layers = activity(net, x, expected.trace.window(steps), measured, hint)
    silent_out = all(L.silent for L in layers if L.layer in net.readout)
    certifying = [r for r in rows if r.certifies]
    if any(r.identical < r.compared for r in certifying):
        verdict = "DIVERGED"
    elif silent_out:
        verdict = "SILENT"
    else:
        verdict = "IDENTICAL" if certifying else "REFERENCE ONLY"
    return Verification(expected.by, expected.description, int(x.shape[0]), steps,
                        expected.trace.spikes[names[0]].shape[1] - steps, tuple(net.readout), tuple(layers),
                        tuple(rows), verdict, {"expected": expected.trace, **traces})


def compare(names: list[str], expected: Expected, got: Trace, steps: int, name: str, title: str, certifies: bool,
            why_not: str = "", seconds: float = 0.0, voltages: bool = True) -> BackendComparison:
    """One backend's trace against the expected one, at every position the backend computed (and the voltage of
    every non-spiking readout, unless ``voltages`` is False: a float model's voltages are in other units)."""
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
    against = expected.description if certifies or not why_not.startswith("a reproduction") else \
        f"its own output as stored ({expected.description})"
    return BackendComparison(name, title, against, certifies, why_not, B, int(same.sum()), first, tuple(layers),
                             tuple(not_computed), tuple(int(i) for i in np.flatnonzero(~same)), seconds,
                             tail_samples)


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
