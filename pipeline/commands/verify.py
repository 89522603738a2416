"""``python -m pipeline verify GRAPH.nir``: will Lava compute what a NIR graph computes?

A graph of ours is read exactly from its integer metadata; any other graph is discretised under the stated
convention and quantised to Loihi 2 (``hardware/graph/read.py``). The network is written as ``model.nir`` (our integer
contract) and read back; the integer reference (``hardware/backends/reference.py``) runs it to give the expected
spikes, and Lava fixed_pt (and lava-dl netx, where ``model.net`` was written) must reproduce them exactly. The
float graph as written (for a discretised graph) is measured against the reference per layer, never asserted.
The comparison is the one verification stage (``hardware/judge/equivalence.py``) that run and recheck use too. What
it does is set by a :class:`pipeline.jobs.VerifyJob` (its options, or ``--set section.key=value``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.backends import BACKENDS, Options, reference
from hardware.chip import loihi2
from hardware.chip.loihi2 import Limits
from hardware.graph import read
from hardware.graph.discretise import PRESETS
from hardware.graph.ir import Network
from hardware.graph.quantise import error_table
from hardware.judge import equivalence, metrics, results
from hardware.judge.results import Measured, Verification
from pipeline import ranks
from pipeline.certify import certificate, handoff, vectors
from pipeline.commands import task as tasks
from pipeline.commands.verify_input import load_input
from pipeline.config import ConfigError
from pipeline.jobs import VerifyJob
from pipeline.report import html, plots
from pipeline.report.report import VerifyReport
from pipeline.runfolder import staged, write_json

REFERENCE = "integer reference: the graph as quantised (model.nir), on the same input spikes"
RANDOM_SAMPLES, RANDOM_STEPS = 4, 20        # random input's defaults (verify.samples = 0, input.steps = 0)


@dataclass(frozen=True)
class _Simulated:
    v: Verification
    expected: results.Expected      # the integer reference's spikes on model.nir
    measured: list                      # the float graph's, measured against them (never asserted)
    accuracy: dict                      # --data: task accuracy per variant
    warnings: list


@dataclass(frozen=True)
class _Input:
    x: np.ndarray                       # (B, steps, inputs) binary spikes
    described: str
    task: tasks.TaskData | None         # --data: the recordings and their labels


def _input(net: Network, job: VerifyJob) -> _Input:
    i = job.input
    if i.dataset:
        task = tasks.load(net, job)
        return _Input(task.x, task.described, task)
    samples, steps = job.verify.samples or RANDOM_SAMPLES, i.steps or None
    if not i.file and samples * (steps or RANDOM_STEPS) * net.input_size > tasks.MAX_WORDS:
        raise ConfigError(f"--samples {samples} x --steps {steps or RANDOM_STEPS} x {net.input_size:,} inputs is "
                          f"{samples * (steps or RANDOM_STEPS) * net.input_size:,} input values; at most "
                          f"{tasks.MAX_WORDS:,} fit this verification's memory: give fewer")
    x, described = load_input(i.file or None, net, samples, steps, i.rate, i.seed)
    return _Input(x, described, None)


def verify(graph: Path, out: Path, job: VerifyJob = VerifyJob(), *, overwrite: bool = False,
           progress: bool = True) -> VerifyReport:
    """Verify ``graph`` as ``job`` says (``graph.target=reference``: the float graph against the integer reference
    only, no Lava) and write ``out`` (model.nir as quantised, model.net where netx can hold it, vectors.h5,
    certificate.json, report.json, report.html, PNGs; replaced whole); returns the report. Under torchrun this is
    rank 0, which shares Lava's samples with the other ranks (:func:`pipeline.ranks.serve`) and alone
    writes. ``graph.netx``: quantise with weight exponents 0 and 1 only (thresholds lowered to match), so that
    lava-dl netx can store every layer (see export/netx_export.py). ``input.dataset``: the input is
    ``verify.samples`` recordings (0: all) of that dataset's test split, framed for the graph
    (``pipeline/commands/task.py``), and the report gives the task accuracy of the float graph (its framework's
    reset and Loihi 2's), the integer reference and each backend."""
    t0 = time.perf_counter()
    g = job.graph
    with ranks.Sharing() as share, staged(out, "verify", overwrite) as tmp:
        net = read.load(graph, dt=g.dt or None, method=g.method or None, source=g.source,
                        limits=handoff.NETX_LIMITS if g.netx else Limits())
        given = _input(net, job)
        x = given.x
        hand = handoff.write_graphs(net, x.shape[1], graph, tmp)
        run_net = hand.net or net            # the backends run the network as read back from model.nir
        expected = equivalence.reference_expected(run_net, x, "reference", REFERENCE)
        measured = []
        if net.float_model:
            flt = reference.simulate(net, x, integer=False)
            measured.append(Measured("float graph", flt, "the graph as written (discretised) before quantisation, "
                                     "which changes spikes", "quantisation silenced it"))
        chosen = [] if g.target == "reference" else \
            ["lava"] + (["netx"] if (tmp / "model.net").is_file() else [])
        options = Options(tmp, job.verify.workers, job.verify.chunk, progress, job.verify.one_per_sample)
        share.send(run_net, x, tmp, chosen, options)
        hint = (f"the graph was read at dt = {net.dt:g} s ({net.method}, --source {net.source}); if its framework "
                "simulates at another time step or convention, give --dt and --method (or --source)") \
            if not net.exact else "read from its integer metadata: the input may be too weak for its thresholds"
        v = equivalence.verify(run_net, x, expected, [BACKENDS[b] for b in chosen], options, measured,
                               share.simulate(run_net, options), hint)
        resets = tasks.float_resets(graph, net, x, measured[0].trace if measured else None,
                                    wanted=bool(given.task))
        accuracy = tasks.task_accuracy(run_net, given.task, resets, v) if given.task else {}
        sim = _Simulated(v, expected, measured, accuracy, tasks.reset_warnings(resets, accuracy))
        report = _report(graph, job, net, hand, given, sim, time.perf_counter() - t0)
        write_json(tmp / "report.json", report.to_json())
        if hand.graph is not None:
            _certify(tmp, out, report, run_net, x, hand, job.verify.vectors)
        _pictures(tmp, net, given, sim)
        html.write(tmp, report, title=f"verify {Path(graph).name}")
    return report


def _report(graph: Path, job: VerifyJob, net: Network, hand: handoff.HandOff, given: _Input, sim: _Simulated,
            seconds: float) -> VerifyReport:
    x, v, measured, run_net = given.x, sim.v, sim.measured, hand.net or net
    window = sim.expected.trace.window(x.shape[1])
    return VerifyReport(
        v, str(graph), given.described, job.graph.target,
        "exact (integer metadata)" if net.exact else "discretised and quantised",
        {"source": net.source, "method": net.method, "dt": net.dt, "convention": PRESETS.get(net.source)}
        if not net.exact else {"dt": net.dt},
        tuple(metrics.float_agreement(net, measured[0].trace, window)) if measured else (),
        tuple(error_table(net)) if net.float_model else (),
        tuple({"projection": p.name, "kind": p.synapse.kind, "weights": list(p.synapse.weight.shape),
               "via": " > ".join(p.path) or "direct", "weight_exp": p.synapse.exp, "max_delay": p.max_delay,
               "synapses": int(np.count_nonzero(p.synapse.weight))} for p in net.projections),
        tuple(net.notes), hand.notes or ("model.nir, model.net, vectors.h5 and certificate.json written",),
        fit(run_net, x.shape[1]), ranks.rank_world()[1], round(seconds, 2),
        task=sim.accuracy, warnings=tuple(sim.warnings), metrics=metrics.measure(run_net, x, window.spikes).to_dict())


def _pictures(folder: Path, net: Network, given: _Input, sim: _Simulated) -> None:
    """rasters.png (float graph, integer reference and Lava side by side) and, with --data, confusion.png."""
    steps, names = given.x.shape[1], list(net.populations)
    v, expected, measured, accuracy = sim.v, sim.expected, sim.measured, sim.accuracy
    shown = {"float graph": measured[0].trace} if measured else {}
    shown["integer reference"] = expected.trace.window(steps)
    if "lava" in v.traces:
        shown["Lava fixed_pt"] = v.traces["lava"].window(steps)
    scale = {k: net.float_model.populations[k].scale if net.float_model else 1.0 for k in names}
    plots.rasters3(folder / "rasters.png", [[t.spikes[k] for k in names] for t in shown.values()], names,
                   {k: tuple(t.voltage[k] / scale[k] for t in shown.values()) for k in expected.trace.voltage},
                   titles=tuple(shown))
    if accuracy:
        plots.confusion(folder / "confusion.png", np.asarray(accuracy["confusion"]["matrix"]), given.task.classes,
                        f"integer reference on {len(given.task.labels)} test recordings (Lava equals it where "
                        "IDENTICAL)")


def fit(net: Network, steps: int) -> dict:
    """Loihi 2's resource estimate and verdict for the network as deployed, at ``steps`` steps per sample."""
    from dataclasses import replace
    violations = loihi2.check(replace(net, n_steps=steps))
    est = loihi2.estimate(net)
    if violations:
        verdict = f"does NOT fit: {violations[0]}" + (f" (and {len(violations) - 1} more)" if len(violations) > 1
                                                       else "") + "; the verification runs it all the same"
    else:
        verdict = f"fits: {est['cores']} of {est['resources']['cores_per_chip']} neuro-cores, {steps} steps"
    return {"resources": est, "verdict": verdict, "violations": [str(x) for x in violations]}


def task_details(task: dict) -> dict:
    """What a certificate says of the task accuracy: never a number without the samples, classes and undecided
    readouts it rests on."""
    return {"task_accuracy": task["task_accuracy"], "task_samples": task["samples"],
            "task_classes": {"present": task["classes_present"], "of": len(task["classes"]),
                             "chance": task["chance"]},
            "task_undecided": {"count": task["undecided"],
                               "recordings": task["undecided_recordings"][:100],
                               "meaning": "the readout did not decide (no spike, or a tie for the most): counted "
                                          "wrong; recordings are indices into the test split as read (the first 100)"},
            "decoding": task["decoding"], "data": task["data"]}


def _certify(folder: Path, out: Path, report: VerifyReport, net: Network, x: np.ndarray, hand: handoff.HandOff,
             wanted: int) -> None:
    """vectors.h5 (input and the integer reference's spikes: the first ``wanted`` samples and the diverged ones)
    and certificate.json."""
    v = report.verification
    diverged = sorted({i for b in v.certifying for i in b.diverged})
    idx = vectors.choose(v.samples, wanted, diverged)
    vectors.write(folder / vectors.VECTORS, hand.graph, net, x[idx], v.traces["expected"].take(idx))
    not_checked = list(hand.notes)
    if report.target != "lava":
        not_checked.append("lava and netx: not run (--target reference)")
    not_checked += [f"vectors: {len(idx)} of the {v.samples} samples are stored in {vectors.VECTORS}; recheck "
                    "replays those",
                    "model.onnx: not written by verify (run writes it for its own graphs)",
                    f"input: {report.input}",
                    "no Loihi 2 chip was run: Lava's bit-accurate CPU simulation (Loihi2SimCfg fixed_pt) stands in"]
    info = certificate.VectorsInfo(len(idx), x.shape[1], v.tail_steps, net.dt, tuple(int(i) for i in idx),
                                   f"the first {min(wanted, v.samples)} of the {v.samples} verified samples"
                                   + (" and the diverged ones" if diverged else ""),
                                   "the integer reference's spikes on model.nir, run on past each sample's "
                                   f"{x.shape[1]} steps for {v.tail_steps} more with no input")
    cert = certificate.certify("verify", folder, out, v, info, vectors.node_names(hand.graph), not_checked,
                               {"graph": report.graph, "read": report.read, "discretisation": report.discretisation,
                                "loihi2": report.loihi2["verdict"],
                                **(task_details(report.task) if report.task else {})})
    cert.write(folder)
