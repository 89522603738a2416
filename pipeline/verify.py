"""``python -m pipeline verify GRAPH.nir``: will Lava compute what a NIR graph from another framework computes?

Three simulations of the same input spikes: the graph as written (float, discretised under the stated
convention), the integer reference after quantisation to Loihi 2 (``hardware/netsim.py``), and Lava fixed_pt
(``hardware/lava_net.py``). Lava must equal the reference exactly; float vs integer is measured per layer and
reported, never asserted. ``report.json`` has run's schema: ``backends.reference`` is compared against the float
graph, ``backends.lava`` against the reference (each with ``against``).
"""
from __future__ import annotations

import time
from pathlib import Path

import nir
import numpy as np

from hardware import foreign, lava_net, loihi2, netsim
from hardware.equivalence import compare
from hardware.graph import GraphError
from pipeline import html_report, plots
from pipeline.runfolder import staged, write_json


def load_input(path, net: foreign.Net, samples: int, steps: int | None, rate: float,
               seed: int) -> tuple[np.ndarray, str]:
    """(B, n_steps, inputs) binary spikes: from a .npy/.npz file, from NIR's recorded-data containers
    (``nir.TimeGriddedData``; ``nir.EventData`` is gridded at the net's dt), or Bernoulli(rate) when none is given."""
    n_in = int(np.prod(net.input_shape))
    x, described = _read_input(path, net, n_in, samples, steps, rate, seed)
    if steps and steps > x.shape[1]:
        x = np.concatenate([x, np.zeros((x.shape[0], steps - x.shape[1], n_in), np.int64)], axis=1)
    return x, described


def _read_input(path, net: foreign.Net, n_in: int, samples: int, steps: int | None, rate: float, seed: int):
    if isinstance(path, (nir.EventData, nir.TimeGriddedData)):
        grid = path.to_time_gridded(net.dt) if isinstance(path, nir.EventData) else path
        if abs(grid.dt - net.dt) > 1e-12 * net.dt:
            raise GraphError(f"recorded data has dt {grid.dt:g}; the graph is discretised at {net.dt:g}")
        data = np.asarray(grid.data)
        if data.ndim != 3 or data.shape[2] != n_in:
            raise GraphError(f"recorded data of shape {data.shape}: expected (samples, steps, {n_in})")
        return (data > 0).astype(np.int64), f"NIR {type(path).__name__}: {data.shape[0]} samples x " \
                                             f"{data.shape[1]} steps"
    if path is None:
        T = steps or 20
        x = np.random.default_rng(seed).random((samples, T, n_in)) < rate
        return x.astype(np.int64), f"random spikes: {samples} samples x {T} steps, rate {rate}, seed {seed}"
    try:
        data = np.load(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            data = data["input"] if "input" in data else data[data.files[0]]
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise GraphError(f"{path}: not a readable .npy/.npz input ({e})") from None
    data = np.asarray(data)
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
    return (data.reshape(lead[0], lead[1], n_in) > 0).astype(np.int64), f"{path}: {lead[0]} samples x {lead[1]} steps"


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 and nb == 0:
        return 1.0
    return float(a.ravel() @ b.ravel() / (na * nb)) if na and nb else 0.0


def float_agreement(net: foreign.Net, f: netsim.Trace, i: netsim.Trace) -> list[dict]:
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
            fv, iv = f.voltage[name] / pop.scale, i.voltage[name] / pop.scale
            row["voltage_cosine"] = _cosine(fv, iv)
            row["voltage_max_abs_error"] = float(np.abs(fv - iv).max())
        rows.append(row)
    return rows


def _backend(names: list[str], golden: netsim.Trace, other: netsim.Trace, against: str) -> dict:
    """``compare`` on spikes; against the reference, readout voltages must match too for a sample to count."""
    r = compare([golden.spikes[k] for k in names], [other.spikes[k] for k in names], names)
    r["against"] = against
    if golden.voltage and against != "float":
        diffs = [golden.spikes[k] != other.spikes[k] for k in names]
        diffs += [golden.voltage[k] != other.voltage[k] for k in golden.voltage]
        r["voltage_mismatched"] = {k: int((golden.voltage[k] != other.voltage[k]).sum()) for k in golden.voltage}
        r["identical"] = int(sum(~np.any([d.reshape(len(d), -1).any(axis=1) for d in diffs], axis=0)))
    return r


def resources(net: foreign.Net) -> dict:
    """Cores per population under loihi2's partitioning (fan-in = all incoming synapses)."""
    return loihi2.estimate_layers([(k, p.size, sum(q.w.shape[1] for q in net.projections if q.target == k))
                                   for k, p in net.populations.items()])


def verify(graph: Path, out: Path, dt: float | None = None, method: str | None = None, source: str = "nir",
           input_path: Path | None = None, samples: int = 4, steps: int | None = None, rate: float = 0.2,
           seed: int = 0, workers: int = 1, progress: bool = True) -> dict:
    """Verify ``graph`` (three-way) and write ``out`` (report.json, report.html, PNGs); returns the report."""
    t0 = time.perf_counter()
    net = foreign.load(foreign.read(graph), dt=dt, method=method, source=source)
    x, described = load_input(input_path, net, samples, steps, rate, seed)
    names = list(net.populations)
    flt = netsim.simulate(net, x, integer=False)
    ref = netsim.simulate(net, x, integer=True)
    lava = lava_net.simulate(net, x, workers=workers, progress=progress)
    report = {
        "graph": str(graph), "input": described, "samples": int(x.shape[0]), "steps": int(x.shape[1]),
        "discretisation": {"source": net.source, "method": net.method, "dt": net.dt,
                           "convention": foreign.PRESETS[net.source]},
        "backends": {"reference": _backend(names, flt, ref, "float"), "lava": _backend(names, ref, lava, "reference")},
        "float": float_agreement(net, flt, ref),
        "quantisation": foreign.error_table(net),
        "projections": [{"projection": p.name, "via": " > ".join(p.path) or "direct", "weight_exp": p.exp,
                         "max_delay": int(p.delay.max()), "synapses": int(np.count_nonzero(p.q))}
                        for p in net.projections],
        "readout": net.readout, "notes": net.notes,
        "loihi2": {"resources": resources(net)},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    report["verdict"] = ("IDENTICAL" if report["backends"]["lava"]["identical"] == x.shape[0] else "DIVERGED")
    with staged(out) as tmp:
        write_json(tmp / "report.json", report)
        plots.rasters3(tmp / "rasters.png", [flt.spikes[k] for k in names], [ref.spikes[k] for k in names],
                       [lava.spikes[k] for k in names], names,
                       {k: tuple(t.voltage[k] / net.populations[k].scale for t in (flt, ref, lava))
                        for k in flt.voltage})
        html_report.write(tmp, report, title=f"verify {Path(graph).name}")
    return report


def summary(report: dict, out: Path) -> str:
    lava, ref = report["backends"]["lava"], report["backends"]["reference"]
    lines = [f"{report['graph']}: {report['verdict']}: Lava fixed_pt == integer reference on "
             f"{lava['identical']}/{lava['compared']} samples ({report['input']})",
             f"  float graph vs integer reference: {ref['identical']}/{ref['compared']} samples spike-identical "
             f"({report['discretisation']['method']}, dt {report['discretisation']['dt']:g} s)"]
    for r in report["float"]:
        lines.append(f"    {r['layer']} ({r['type']}): spikes float {r['float_spikes']} / integer "
                     f"{r['integer_spikes']}, "
                     f"cosine {r['activity_cosine']:.4f}, first divergence {r['first_divergence']}")
    lines.append(f"  report: {out / 'report.html'}")
    return "\n".join(lines)
