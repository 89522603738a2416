"""What `run` and `verify` report: typed results rendered to report.json, report.html and the printed summary.

Both reports hold the one :class:`hardware.judge.results.Verification` and the details of their command (training,
accuracy and the Loihi 2 estimate for a run; the graph's reading, float agreement and quantisation for verify).
Every rendering starts from these objects; nothing is recomputed from a dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hardware.judge.results import Verification


@dataclass(frozen=True)
class Section:
    """One part of report.html: a heading, and a table (rows of equal keys) and/or a paragraph."""
    title: str
    rows: tuple[dict, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class RunReport:
    verification: Verification
    accuracy: dict[str, float]          # per backend (and golden, model_float.onnx), on the compared samples
    test_samples: int                   # compared
    samples_requested: int              # verify.samples (0: the whole split)
    data: dict
    training: dict
    model: dict
    loihi2: dict                        # resources, activity, energy estimate
    onnx_float: dict                    # prediction agreement of model_float.onnx (its spikes: verification)
    netx: str
    timings_s: dict
    config: dict
    kind: str = "run"
    metrics: dict = field(default_factory=dict)     # NeuroBench-style (hardware/judge/metrics.py)
    undecided: dict = field(default_factory=dict)   # samples whose readout did not decide (no spike or a tie)

    def to_json(self) -> dict:
        return {"kind": self.kind, **self.verification.to_json(), "accuracy": self.accuracy,
                "test_samples": self.test_samples, "undecided": self.undecided,
                **({"samples_requested": self.samples_requested}
                   if self.samples_requested > self.test_samples else {}),
                "onnx_float": self.onnx_float, "netx": self.netx, "loihi2": self.loihi2, "data": self.data,
                "training": self.training, "model": self.model, "timings_s": self.timings_s, "config": self.config,
                "metrics": self.metrics}

    @property
    def intro(self) -> str:
        v = self.verification
        u = self.undecided.get("samples", 0)
        return (f"Golden (integer) accuracy {self.accuracy['golden']:.4f} on {self.test_samples} test samples"
                + (f" ({u} undecided: no output spike or a tie, decided by lowest index; "
                   f"{self.undecided['accuracy_counting_them_wrong']:.4f} counting them wrong)" if u else "") + ". "
                f"Expected spikes: {v.expected}. Every certifying backend is compared at every step it computes, "
                f"in every layer and sample. Verdict: {v.verdict}.")

    def sections(self) -> list[Section]:
        act = self.loihi2["activity"]
        res = self.loihi2["resources"]
        return [Section("Integer parameters per layer", tuple(self.model["layers"])),
                Section(f"Loihi 2: {res['cores']} of {res['resources']['cores_per_chip']} neuro-cores",
                        tuple(res["layers"])),
                Section("Activity and energy per inference (energy is an estimate)",
                        (act["per_inference"],) + tuple(act["layers"]), act["energy_source"]),
                Section("Float ONNX model (no integer truncation)", (),
                        f"predictions agree with the golden model on "
                        f"{100 * self.onnx_float['prediction_agreement']:.1f}%; accuracy "
                        f"{self.onnx_float['accuracy']:.4f}. Measured, not an equivalence claim (its spikes: the "
                        "model_float.onnx row above).")] + (metric_sections(self.metrics) if self.metrics else [])


@dataclass(frozen=True)
class VerifyReport:
    verification: Verification
    graph: str
    input: str
    target: str
    read: str
    discretisation: dict
    float: tuple[dict, ...]             # per layer: the float graph against the integer reference
    quantisation: tuple[dict, ...]
    projections: tuple[dict, ...]
    notes: tuple[str, ...]
    handoff: tuple[str, ...]
    loihi2: dict
    ranks: int
    seconds: float
    kind: str = "verify"
    accuracy: dict = field(default_factory=dict)
    task: dict = field(default_factory=dict)        # verify --data: task accuracy per variant (commands/verify.py)
    warnings: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict)     # NeuroBench-style (hardware/judge/metrics.py)

    def to_json(self) -> dict:
        return {"kind": self.kind, **self.verification.to_json(), "graph": self.graph, "input": self.input,
                "target": self.target, "read": self.read, "discretisation": self.discretisation,
                "float": list(self.float), "quantisation": list(self.quantisation),
                "projections": list(self.projections), "notes": list(self.notes), "handoff": list(self.handoff),
                "loihi2": self.loihi2, "ranks": self.ranks, "seconds": self.seconds,
                **({"task_accuracy": self.task["task_accuracy"], "decoding": self.task["decoding"],
                    "task": self.task} if self.task else {}),
                "warnings": list(self.warnings), "metrics": self.metrics}

    @property
    def intro(self) -> str:
        d = self.discretisation
        reading = (f"Discretisation: {d['method']}, dt {d['dt']:g} s ({d['source']} convention); the float graph's "
                   "differences from the reference are quantisation, measured." if "method" in d else
                   "Read exactly from the graph's integer metadata (our contract): no quantisation.")
        return (f"Input: {self.input}. {reading} Lava must equal the integer reference exactly. "
                f"Verdict: {self.verification.verdict}.")

    def sections(self) -> list[Section]:
        out = []
        if self.task:
            t = self.task
            out.append(Section(f"Task accuracy: {t['data']} (decoding: {t['decoding']})",
                               tuple({"variant": r["variant"], "accuracy": "-" if r["accuracy"] is None else
                                      round(r["accuracy"], 4), "undecided": "-" if r.get("undecided") is None
                                      else r["undecided"], "note": r["note"]} for r in t["rows"]),
                               f"{t['samples']} samples of {t['classes_present']} of the {len(t['classes'])} "
                               f"classes (chance {t['chance']:.4f}); a readout that does not decide (no spike, or a "
                               "tie for the most) is counted wrong. The integer reference's confusion matrix is "
                               "below; Lava and netx equal it where the verdict is IDENTICAL."))
        if self.metrics:
            out += metric_sections(self.metrics)
        if self.float:
            out.append(Section("Float graph vs integer reference, per layer (measured)", self.float))
        out += [Section("Note", (), n) for n in self.notes]
        out.append(Section("Projections (linear paths composed into one synapse each: a kernel or a matrix)",
                           self.projections))
        if self.quantisation:
            out.append(Section("Quantisation to Loihi 2 integers", self.quantisation))
        res = self.loihi2["resources"]
        out.append(Section(f"Loihi 2: {res.get('cores', '-')} of {res['resources']['cores_per_chip']} neuro-cores",
                           tuple(res.get("layers", ())), self.loihi2.get("verdict", "")))
        return out


def metric_sections(m: dict) -> list[Section]:
    """NeuroBench-style metrics: the totals with their definitions, and per layer."""
    keys = ("footprint_bytes", "state_bytes", "parameter_count", "connection_sparsity", "activation_sparsity",
            "synops_effective_acs", "synops_dense", "synops_effective_macs")
    return [Section(f"NeuroBench-style metrics (per inference, over {m['samples']} samples; hardware/judge/metrics.py "
                    "says where they differ from NeuroBench's)",
                    tuple({"metric": k, "value": m[k], "definition": m["definitions"][k]} for k in keys)),
            Section("Metrics per layer", tuple(m["layers"]))]
