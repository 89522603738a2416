"""``python -m pipeline verify GRAPH.nir``: will Lava compute what a NIR graph computes?

A graph of ours is read exactly from its integer metadata; any other graph is discretised under the stated
convention and quantised to Loihi 2 (``hardware/read.py``). The network is written as ``model.nir`` (our integer
contract) and read back; the integer reference (``hardware/backends/reference.py``) runs it to give the expected
spikes, and Lava fixed_pt (and lava-dl netx, where ``model.net`` was written) must reproduce them exactly. The
float graph as written (for a discretised graph) is measured against the reference per layer, never asserted.
The comparison is the one verification stage (``hardware/equivalence.py``) that run and recheck use too.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import nir
import numpy as np

from hardware import equivalence, h5safe, loihi2, metrics, read
from hardware.backends import BACKENDS, Options, reference
from hardware.discretise import PRESETS
from hardware.equivalence import Measured
from hardware.errors import GraphError
from hardware.ir import Network
from hardware.loihi2 import Limits
from hardware.quantise import error_table
from hardware.trace import Trace
from pipeline.certify import certificate, handoff, vectors
from pipeline.commands import task as tasks
from pipeline.config import ConfigError
from pipeline.report import html, plots
from pipeline.report.report import VerifyReport
from pipeline.runfolder import staged, write_json
from pipeline.train import ranks


def load_input(path, net: Network, samples: int, steps: int | None, rate: float,
               seed: int) -> tuple[np.ndarray, str]:
    """(B, n_steps, inputs) binary spikes: from a .npy/.npz file, from NIR's recorded-data containers
    (``nir.TimeGriddedData``; ``nir.EventData`` is gridded at the net's dt), or Bernoulli(rate) when none is given."""
    n_in = net.input_size
    x, described = _read_input(path, net, n_in, samples, steps, rate, seed)
    if steps and steps > x.shape[1]:
        x = np.concatenate([x, np.zeros((x.shape[0], steps - x.shape[1], n_in), np.int64)], axis=1)
    return x, described


def _read_input(path, net: Network, n_in: int, samples: int, steps: int | None, rate: float, seed: int):
    if isinstance(path, (nir.EventData, nir.TimeGriddedData)):
        grid = path.to_time_gridded(net.dt) if isinstance(path, nir.EventData) else path
        if abs(grid.dt - net.dt) > 1e-12 * net.dt:
            raise GraphError(f"recorded data has dt {grid.dt:g}; the graph is discretised at {net.dt:g}")
        data = np.asarray(grid.data)
        if data.ndim != 3 or data.shape[2] != n_in:
            raise GraphError(f"recorded data of shape {data.shape}: expected (samples, steps, {n_in})")
        return _binary(data, "recorded data"), f"NIR {type(path).__name__}: {data.shape[0]} samples x " \
                                               f"{data.shape[1]} steps"
    if path is None:
        T = steps or 20
        x = np.random.default_rng(seed).random((samples, T, n_in)) < rate
        return x.astype(np.int64), f"random spikes: {samples} samples x {T} steps, rate {rate}, seed {seed}"
    h5safe.regular_file(Path(path), ".npy/.npz input")
    if (size := Path(path).stat().st_size) > 8 * MAX_WORDS:
        raise GraphError(f"{path}: {size:,} bytes; an input of at most {8 * MAX_WORDS:,} bytes fits this "
                         "verification's memory")
    try:
        data = np.load(path, allow_pickle=False)         # never unpickle a file
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if "input" not in data.files:
                    raise GraphError(f"{path}: an .npz input needs an array named 'input' (it holds "
                                     f"{', '.join(map(repr, data.files)) or 'no arrays'})")
                data = data["input"]
    except GraphError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise GraphError(f"{path}: not a readable .npy/.npz input ({' '.join(str(e).split())})") from None
    data = np.asarray(data)
    if data.size == 0:
        raise GraphError(f"{path}: shape {data.shape} holds no spikes (empty)")
    if data.shape[data.ndim - len(net.input_shape):] == net.input_shape:
        lead = data.shape[:data.ndim - len(net.input_shape)]
    elif data.ndim >= 2 and data.shape[-1] == n_in:
        lead = data.shape[:-1]
    else:
        raise GraphError(f"{path}: shape {data.shape} does not end in the graph's input shape {net.input_shape}")
    if len(lead) == 1:
        data, lead = data[None], (1,) + lead
    if len(lead) != 2:
        raise GraphError(f"{path}: shape {data.shape}: expected (T, {net.input_shape}) or (B, T, ...)")
    return _binary(data.reshape(lead[0], lead[1], n_in), str(path)), f"{path}: {lead[0]} samples x {lead[1]} steps"


def _binary(data: np.ndarray, what: str) -> np.ndarray:
    """Spikes as int64 0/1; anything else (0.5, -1, NaN, counts) is refused, never silently binarised."""
    if data.dtype.kind not in "biuf":
        raise GraphError(f"{what}: {data.dtype} values; input spikes are 0 and 1")
    bad = (data != 0) & (data != 1)
    if bad.any():
        raise GraphError(f"{what}: holds {int(bad.sum())} values other than 0 and 1 (e.g. {data[bad].flat[0]!r}); "
                         "input spikes are 0 and 1")
    return data.astype(np.int64)


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



TARGETS = ("lava", "reference")
REFERENCE = "integer reference: the graph as quantised (model.nir), on the same input spikes"


MAX_SAMPLES, MAX_STEPS, MAX_WORDS = 100_000, 100_000, tasks.MAX_WORDS


def check_options(samples: int, steps: int | None, rate: float, workers: int, seed: int = 0,
                  data: bool = False) -> None:
    """Options no simulation could run with: one line naming the option and its range."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise ConfigError(f"--samples {samples}: give 1..{MAX_SAMPLES:,} " + (
            "test recordings (leave --samples out for the whole test split)" if data else "random input samples"))
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"--steps {steps}: give 1..{MAX_STEPS:,} time steps (Loihi 2's configured bound is "
                          f"{Limits().max_steps}; more are simulated, with a warning)")
    if not (math.isfinite(rate) and 0 <= rate <= 1):
        raise ConfigError(f"--rate {rate:g} is not a spike probability in [0, 1]")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed {seed}: give 0..{2**32 - 1}")


def verify(graph: Path, out: Path, dt: float | None = None, method: str | None = None, source: str = "nir",
           input_path: Path | None = None, samples: int | None = None, steps: int | None = None,
           rate: float | None = None,
           seed: int = 0, workers: int = 1, progress: bool = True, target: str = "lava",
           overwrite: bool = False, vectors: int = 32, netx: bool = False, data: str | None = None,
           root: str | None = None, bin_us: float | None = None, data_overrides: tuple[str, ...] = ()
           ) -> VerifyReport:
    """Verify ``graph`` (``target="reference"``: the float graph against the integer reference only, no Lava) and
    write ``out`` (model.nir as quantised, model.net where netx can hold it, vectors.h5, certificate.json,
    report.json, report.html, PNGs; replaced whole); returns the report. Under torchrun this is rank 0, which
    shares Lava's samples with the other ranks (:func:`pipeline.train.ranks.serve`) and alone writes.
    ``netx``: quantise with weight exponents 0 and 1 only (thresholds lowered to match), so that lava-dl netx
    can store every layer (see export/netx_export.py).
    ``data``: the input is the first ``samples`` recordings (default all) of that dataset's test split, framed
    for the graph (``pipeline/commands/task.py``), and the report gives the task accuracy of the float graph
    (its framework's reset and Loihi 2's), the integer reference and each backend."""
    if target not in TARGETS:
        raise ConfigError(f"unknown verify target {target!r}; choose one of {list(TARGETS)}")
    if data and input_path is not None:
        raise ConfigError("--input and --data both given: verify runs one input, give one")
    if data and steps is not None:
        raise ConfigError("--steps with --data: the data's framing sets the steps (give --bin-us)")
    if (data or input_path is not None) and rate is not None:
        raise ConfigError(f"--rate with {'--data' if data else '--input'}: "
                          f"{'the recordings' if data else 'the file'} is the input; --rate sets random input only")
    if not data:
        given = [o for o, v in (("--bin-us", bin_us), ("--root", root), ("--set", data_overrides)) if v]
        if given:
            raise ConfigError(f"{given[0]} without --data: it sets how a dataset is read (give --data NAME)")
    if samples is None and not data:
        samples = 4
    rate = 0.2 if rate is None else rate
    check_options(1 if samples is None else samples, steps, rate, workers, seed, bool(data))
    if vectors < 1:
        raise ConfigError(f"--vectors {vectors}: store at least 1 sample")
    t0 = time.perf_counter()
    with ranks.Sharing() as share, staged(out, "verify", overwrite) as tmp:
        net = read.load(graph, dt=dt, method=method, source=source,
                        limits=handoff.NETX_LIMITS if netx else Limits())
        task = tasks.load(net, data, root, samples, bin_us, data_overrides, seed) if data else None
        if task:
            x, described = task.x, task.described
        else:
            if input_path is None and samples * (steps or 20) * net.input_size > MAX_WORDS:
                raise ConfigError(f"--samples {samples} x --steps {steps or 20} x {net.input_size:,} inputs is "
                                  f"{samples * (steps or 20) * net.input_size:,} input values; at most "
                                  f"{MAX_WORDS:,} fit this verification's memory: give fewer")
            x, described = load_input(input_path, net, samples, steps, rate, seed)
        hand = handoff.write_graphs(net, x.shape[1], graph, tmp)
        run_net = hand.net or net            # the backends run the network as read back from model.nir
        names = list(net.populations)
        expected = equivalence.reference_expected(run_net, x, "reference", REFERENCE)
        measured = []
        if net.float_model:
            flt = reference.simulate(net, x, integer=False)
            measured.append(Measured("float graph", flt, "the graph as written (discretised) before quantisation, "
                                     "which changes spikes", "quantisation silenced it"))
        chosen = [] if target == "reference" else \
            ["lava"] + (["netx"] if (tmp / "model.net").is_file() else [])
        options = Options(tmp, workers, 250, progress)
        share.send(run_net, x, tmp, chosen, options)
        hint = (f"the graph was read at dt = {net.dt:g} s ({net.method}, --source {net.source}); if its framework "
                "simulates at another time step or convention, give --dt and --method (or --source)") \
            if not net.exact else "read from its integer metadata: the input may be too weak for its thresholds"
        v = equivalence.verify(run_net, x, expected, [BACKENDS[b] for b in chosen], options, measured,
                               share.simulate(run_net, options), hint)
        resets = tasks.float_resets(graph, net, x, measured[0].trace if measured else None, wanted=bool(task))
        accuracy = tasks.task_accuracy(run_net, task, resets, v) if task else {}
        warnings = tasks.reset_warnings(resets, accuracy)
        report = VerifyReport(
            v, str(graph), described, target, "exact (integer metadata)" if net.exact else "discretised and quantised",
            {"source": net.source, "method": net.method, "dt": net.dt, "convention": PRESETS.get(net.source)}
            if not net.exact else {"dt": net.dt},
            tuple(float_agreement(net, measured[0].trace, expected.trace.window(x.shape[1]))) if measured else (),
            tuple(error_table(net)) if net.float_model else (),
            tuple({"projection": p.name, "kind": p.synapse.kind, "weights": list(p.synapse.weight.shape),
                   "via": " > ".join(p.path) or "direct", "weight_exp": p.synapse.exp, "max_delay": p.max_delay,
                   "synapses": int(np.count_nonzero(p.synapse.weight))} for p in net.projections),
            tuple(net.notes), hand.notes or ("model.nir, model.net, vectors.h5 and certificate.json written",),
            fit(run_net, x.shape[1]), ranks.rank_world()[1], round(time.perf_counter() - t0, 2),
            task=accuracy, warnings=tuple(warnings),
            metrics=metrics.measure(run_net, x, expected.trace.window(x.shape[1]).spikes))
        write_json(tmp / "report.json", report.to_json())
        if hand.graph is not None:
            _certify(tmp, out, report, run_net, x, hand, vectors)
        shown = {"float graph": measured[0].trace} if measured else {}
        shown["integer reference"] = expected.trace.window(x.shape[1])
        if "lava" in v.traces:
            shown["Lava fixed_pt"] = v.traces["lava"].window(x.shape[1])
        scale = {k: net.float_model.populations[k].scale if net.float_model else 1.0 for k in names}
        plots.rasters3(tmp / "rasters.png", [[t.spikes[k] for k in names] for t in shown.values()], names,
                       {k: tuple(t.voltage[k] / scale[k] for t in shown.values())
                        for k in expected.trace.voltage}, titles=tuple(shown))
        if accuracy:
            plots.confusion(tmp / "confusion.png", np.asarray(accuracy["confusion"]["matrix"]), task.classes,
                            f"integer reference on {len(task.labels)} test recordings (Lava equals it where "
                            "IDENTICAL)")
        html.write(tmp, report, title=f"verify {Path(graph).name}")
    return report


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
                               report.ranks, {"graph": report.graph, "read": report.read,
                                              "discretisation": report.discretisation,
                                              "loihi2": report.loihi2["verdict"],
                                              **(task_details(report.task) if report.task else {})})
    cert.write(folder)
