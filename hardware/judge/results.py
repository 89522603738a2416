"""The results of a verification, typed: verdicts and backend roles as enums, and the comparison of each backend
and the activity of each layer as frozen dataclasses (``hardware/judge/equivalence.py`` computes them; every
report, certificate and summary renders from them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Mapping

from hardware.judge.trace import Trace


class Verdict(StrEnum):
    """The one verdict of a verification (a string where it is written: report.json, certificate.json)."""
    IDENTICAL = "IDENTICAL"
    REFERENCE_ONLY = "REFERENCE ONLY"
    SILENT = "SILENT"
    DIVERGED = "DIVERGED"
    TAMPERED = "TAMPERED"


class Role(StrEnum):
    """What a backend's comparison with the expected spikes is."""
    CERTIFIES = "certifies"         # an independent implementation: its agreement is a check
    REPRODUCES = "reproduces"       # the producer of the expected spikes replaying its own stored output
    MEASURED = "measured"           # a float model: its disagreement is measured, never part of a verdict


# verdict: (exit status, meaning), in order of severity: a combined verdict is the most severe of its parts
VERDICTS: dict[Verdict, tuple[int, str]] = {
    Verdict.IDENTICAL: (0, "every certifying backend reproduced the expected spikes at every position it computed"),
    Verdict.REFERENCE_ONLY: (0, "no independent backend was compared: the integer reference alone (verify --target "
                          "reference), or replaying its own stored output; nothing is certified"),
    Verdict.SILENT: (3, "identical, but every readout stayed silent in every compared sample: identical silence "
                  "certifies nothing"),
    Verdict.DIVERGED: (1, "a certifying backend differed from the expected spikes (the first divergence is named), "
                    "or a Lava run failed"),
    Verdict.TAMPERED: (1, "recheck: a certified file is missing or changed, so nothing was run on it"),
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
    role: Role
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
    def certifies(self) -> bool:
        return self.role is Role.CERTIFIES

    @property
    def verdict(self) -> str:
        same = self.identical == self.compared
        if self.role is Role.MEASURED:
            return "MEASURED"
        if self.role is Role.REPRODUCES:
            return "REPRODUCED" if same else "NOT REPRODUCED"
        return Verdict.IDENTICAL if same else Verdict.DIVERGED

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
    verdict: Verdict
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
