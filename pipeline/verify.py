"""``python -m pipeline verify GRAPH.nir``: will Lava compute what a NIR graph computes?

A graph of ours is read exactly from its integer metadata; any other graph is discretised under the stated
convention and quantised to Loihi 2 (``hardware/read.py``). Then the same input spikes run through the graph as
written (float, for a discretised graph), the integer reference (``hardware/backends/reference.py``) and Lava
fixed_pt (``hardware/backends/lava.py``). Lava must equal the reference exactly; float vs integer is measured per
layer and reported, never asserted. ``report.json`` has run's schema: ``backends.reference`` is compared against
the float graph, ``backends.lava`` against the reference (each with ``against``).
"""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import nir
import numpy as np

from hardware import loihi2, read
from hardware.backends import lava, reference
from hardware.backends.reference import Trace
from hardware.discretise import PRESETS
from hardware.equivalence import compare, silent_layers
from hardware.errors import GraphError
from hardware.ir import Network
from hardware.loihi2 import Limits
from hardware.quantise import error_table
from pipeline import html_report, plots, shard, verify_handoff
from pipeline.config import ConfigError
from pipeline.runfolder import staged, write_json


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
    try:
        data = np.load(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if "input" not in data.files:
                    raise GraphError(f"{path}: an .npz input needs an array named 'input' (it holds "
                                     f"{', '.join(map(repr, data.files)) or 'no arrays'})")
                data = data["input"]
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


def _backend(names: list[str], golden: Trace, other: Trace, against: str) -> dict:
    """``compare`` on spikes; against the reference, readout voltages must match too for a sample to count."""
    r = compare([golden.spikes[k] for k in names], [other.spikes[k] for k in names], names)
    r["against"] = against
    if golden.voltage and against != "float":
        diffs = [golden.spikes[k] != other.spikes[k] for k in names]
        diffs += [golden.voltage[k] != other.voltage[k] for k in golden.voltage]
        r["voltage_mismatched"] = {k: int((golden.voltage[k] != other.voltage[k]).sum()) for k in golden.voltage}
        r["identical"] = int(sum(~np.any([d.reshape(len(d), -1).any(axis=1) for d in diffs], axis=0)))
    return r


TARGETS = ("lava", "reference")


def check_options(samples: int, steps: int | None, rate: float, workers: int) -> None:
    """Options no simulation could run with: one line naming the option."""
    if samples < 1:
        raise ConfigError(f"--samples {samples}: give at least 1 random input sample")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps {steps}: give at least 1 time step")
    if not (math.isfinite(rate) and 0 <= rate <= 1):
        raise ConfigError(f"--rate {rate:g} is not a spike probability in [0, 1]")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1")


def find_silent(net: Network, x: np.ndarray, flt: Trace | None, ref: Trace) -> list[dict]:
    """Populations of the integer reference that never spiked in any sample (non-spiking readouts: that no spike
    reached), with the likely cause."""
    counts = {"input": int(x.sum()), **{k: int(v.sum()) for k, v in ref.spikes.items()}}
    hint = (f"the graph was read at dt = {net.dt:g} s ({net.method}, --source {net.source}); if its framework "
            "simulates at another time step or convention, give --dt and --method (or --source)") if not net.exact \
        else "read from its integer metadata: the input may be too weak for its thresholds"
    layers = []
    for k, pop in net.populations.items():
        sources = {p.source: counts[p.source] for p in net.projections if p.target == k and p.source != "bias"}
        layers.append({"layer": k, "spikes": counts[k], "sources": sources, "spiking": pop.spiking,
                       "peak_fraction": ref.peak.get(k)})
    silent = silent_layers(layers, x.shape[0], hint)
    for s in silent:
        if flt is not None and (n := int(flt.spikes[s["layer"]].sum())) and net.populations[s["layer"]].spiking:
            s["cause"] += f" (the float graph spikes {n:,} times here: quantisation silenced it)"
    return silent


def verify(graph: Path, out: Path, dt: float | None = None, method: str | None = None, source: str = "nir",
           input_path: Path | None = None, samples: int = 4, steps: int | None = None, rate: float = 0.2,
           seed: int = 0, workers: int = 1, progress: bool = True, target: str = "lava",
           overwrite: bool = False, vectors: int = 32, netx: bool = False) -> dict | None:
    """Verify ``graph`` (three-way; ``target="reference"``: float vs integer only, no Lava) and write ``out``
    (model.nir as quantised, model.net where netx can hold it, vectors.h5, certificate.json, report.json,
    report.html, PNGs; replaced whole); returns the report. Under torchrun every rank simulates its share of the
    samples and rank 0 alone writes (the other ranks return None). ``netx``: quantise with weight exponents 0 and 1
    only (thresholds lowered to match), so that lava-dl netx can store every layer (see export/netx_export.py)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown verify target {target!r}; choose one of {list(TARGETS)}")
    check_options(samples, steps, rate, workers)
    if vectors < 1:
        raise ConfigError(f"--vectors {vectors}: store at least 1 sample")
    args = (graph, dt, method, source, input_path, samples, steps, rate, seed, workers, progress, target,
            verify_handoff.NETX_LIMITS if netx else Limits())
    if shard.rank_world()[0] != 0:
        if shard.receive():                 # rank 0 could open its output folder: simulate this rank's share
            with tempfile.TemporaryDirectory(prefix="verify-rank-") as tmp:
                _verify(*args, Path(tmp))
        return None
    try:
        with staged(out, "verify", overwrite) as tmp:
            shard.send(True)
            return _write_verify(graph, out, tmp, args, vectors)
    finally:
        shard.release()


def _write_verify(graph, out: Path, tmp: Path, args: tuple, vectors: int) -> dict:
    """Simulate, then write the verify folder's files into ``tmp`` (staged: it becomes ``out`` when complete)."""
    report, traces, net, hand = _verify(*args, tmp)
    write_json(tmp / "report.json", report)
    verify_handoff.certify(tmp, out, report, net, hand, vectors)
    names = list(net.populations)
    scale = {k: net.float_model.populations[k].scale if net.float_model else 1.0 for k in names}
    shown = {title: t for title, t in traces.items() if title != "lava-dl netx"}
    plots.rasters3(tmp / "rasters.png", [[t.spikes[k] for k in names] for t in shown.values()], names,
                   {k: tuple(t.voltage[k] / scale[k] for t in shown.values())
                    for k in next(iter(shown.values())).voltage}, titles=tuple(shown))
    html_report.write(tmp, report, title=f"verify {Path(graph).name}")
    return report


def _verify(graph, dt, method, source, input_path, samples, steps, rate, seed, workers, progress, target,
            limits: Limits, folder: Path):
    t0 = time.perf_counter()
    net = read.load(graph, dt=dt, method=method, source=source, limits=limits)
    x, described = load_input(input_path, net, samples, steps, rate, seed)
    names = list(net.populations)
    flt = reference.simulate(net, x, integer=False) if net.float_model else None
    ref = reference.simulate(net, x)
    hand = verify_handoff.write_graphs(net, x, graph, folder)
    backends = {"reference": _backend(names, flt, ref, "float")} if flt else {}
    traces = {"float graph": flt, "integer reference": ref} if flt else {"integer reference": ref}
    if target == "lava":         # Lava runs the network as read back from model.nir, where it was written
        lava_net = hand.net or net
        lv = shard.shared(lambda part: lava.simulate(lava_net, part, workers=workers, progress=progress), x)
        nx = None
        if (folder / "model.net").is_file():
            try:
                nx = shard.shared(lambda part: lava.simulate(hand.net, part, workers=workers, progress=progress,
                                                             netx=str(folder / "model.net")), x)
            except GraphError as e:
                hand.notes.append(f"netx not run: {e}")
        if shard.rank_world()[0] != 0:
            return None
        backends["lava"] = _backend(names, ref, lv, "reference")
        traces["Lava fixed_pt"] = lv
        if nx is not None:
            backends["netx"] = _backend(names, ref, nx, "reference")
            traces["lava-dl netx"] = nx
    silent = find_silent(net, x, flt, ref)
    report = {
        "graph": str(graph), "input": described, "samples": int(x.shape[0]), "steps": int(x.shape[1]),
        "target": target,
        "read": "exact (integer metadata)" if net.exact else "discretised and quantised",
        "discretisation": {"source": net.source, "method": net.method, "dt": net.dt,
                           "convention": PRESETS.get(net.source)} if not net.exact else {"dt": net.dt},
        "backends": backends,
        "float": float_agreement(net, flt, ref) if flt else [],
        "silent_layers": silent,
        "quantisation": error_table(net) if net.float_model else [],
        "projections": [{"projection": p.name, "kind": p.synapse.kind, "weights": list(p.synapse.weight.shape),
                         "via": " > ".join(p.path) or "direct", "weight_exp": p.synapse.exp,
                         "max_delay": p.max_delay, "synapses": int(np.count_nonzero(p.synapse.weight))}
                        for p in net.projections],
        "readout": list(net.readout), "notes": list(net.notes),
        "handoff": hand.notes or ["model.nir, model.net, vectors.h5 and certificate.json written"],
        "loihi2": {"resources": loihi2.estimate(net)},
        "ranks": shard.rank_world()[1],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    silent_out = {s["layer"] for s in silent} >= set(net.readout)
    if any(backends[b]["identical"] != x.shape[0] for b in ("lava", "netx") if b in backends):
        report["verdict"] = "DIVERGED"
    else:
        report["verdict"] = "SILENT" if silent_out else ("IDENTICAL" if target == "lava" else "REFERENCE ONLY")
    hand.expected = ref
    return report, traces, net, hand


EXIT_CODES = {"IDENTICAL": 0, "REFERENCE ONLY": 0, "DIVERGED": 1, "SILENT": 3}


def summary(report: dict, out: Path) -> str:
    ref = report["backends"].get("reference")
    if "lava" in report["backends"]:
        lava = report["backends"]["lava"]
        head = (f"{report['graph']}: {report['verdict']}: Lava fixed_pt == integer reference on "
                f"{lava['identical']}/{lava['compared']} samples ({report['input']})")
    else:
        head = (f"{report['graph']}: {report['verdict']}: Lava not run (--target reference); float graph vs "
                f"integer reference only ({report['input']})")
    head += "; projections: " + ", ".join(sorted({p["kind"] for p in report["projections"]}))
    lines = [head]
    if ref is not None:
        lines.append(f"  float graph vs integer reference: {ref['identical']}/{ref['compared']} samples spike-identical "
                     f"({report['discretisation']['method']}, dt {report['discretisation']['dt']:g} s)")
    else:
        lines.append("  read exactly from the graph's integer metadata (no float graph to compare)")
    for r in report["float"]:
        lines.append(f"    {r['layer']} ({r['type']}): spikes float {r['float_spikes']} / integer "
                     f"{r['integer_spikes']}, "
                     f"cosine {r['activity_cosine']:.4f}, first divergence {r['first_divergence']}")
    if "netx" in report["backends"]:
        nx = report["backends"]["netx"]
        lines.append(f"  lava-dl netx (model.net) == integer reference on {nx['identical']}/{nx['compared']} samples")
    lines += [f"  hand-off: {note}" for note in report.get("handoff", [])]
    lines += [f"WARNING: layer {s['layer']} never spiked in any of the {s['samples']} samples: {s['cause']}"
              for s in report["silent_layers"]]
    if report["verdict"] == "SILENT":
        lines.append("SILENT: the readout never spiked, so identical spikes certify nothing; exit status 3")
    lines.append(f"  report: {out / 'report.html'}; re-check anywhere: python -m pipeline recheck {out}")
    return "\n".join(lines)
