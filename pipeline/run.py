"""``pipeline run``: data -> training -> deployed integer model -> NIR -> backends -> equivalence report."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from export import netx_export, nir_export, onnx_export
from hardware import equivalence, loihi2, nir_checks, nir_contract, read
from hardware.backends import lava, onnx as onnx_backend, reference
from hardware.errors import GraphError
from hardware.ir import input_spikes
from models.snn import golden_spikes, predict
from pipeline import handoff, html_report, plots, shard, train
from pipeline.config import RunConfig
from pipeline.data import dataset
from pipeline.distill import store
from pipeline.runfolder import atomic_write, staged, write_json

# Every backend: (network read from model.nir, input spikes, verify config, run folder) -> Trace (spikes per
# population, (B, n_steps, N) bool).
BACKENDS = {
    "reference": lambda net, x, v, out: reference.simulate(net, x),
    "lava": lambda net, x, v, out: lava.simulate(net, x, workers=v.workers, chunk=v.chunk),
    "onnx": lambda net, x, v, out: onnx_backend.simulate(net, x, out / "model.onnx"),
    "netx": lambda net, x, v, out: lava.simulate(net, x, workers=v.workers, chunk=v.chunk,
                                                 netx=str(out / "model.net")),
}
TARGETS = {"reference": ("reference",), "lava": ("reference", "lava"), "onnx": ("reference", "onnx"),
           "netx": ("reference", "netx"), "all": tuple(BACKENDS)}


def _stage(text: str) -> None:
    print(f"== {text}", flush=True)


def run(cfg: RunConfig, target: str, out: Path, overwrite: bool = False) -> dict | None:
    """Run every stage and write the run folder (replaced whole, only when the run completes).

    Under torchrun, every rank trains its share (pipeline/train.py) and rank 0 alone does everything else and
    writes the run folder; the other ranks return None."""
    rank, _ = train.rank_world()
    if rank != 0:
        train_set, _ = _load_after_rank0(cfg)
        train.train(cfg, train_set.frames, train_set.labels, len(train_set.classes))
        _verify_share(cfg)
        return None
    try:
        with staged(out, "run", overwrite) as stage:
            return _run(cfg, target, stage, out)
    finally:
        shard.release()


def _verify_share(cfg: RunConfig) -> None:
    """A torchrun rank other than 0: simulate its share of the test samples on every backend rank 0 runs."""
    payload = shard.receive()
    if payload is None:
        return
    import tempfile
    net, x, files, names = payload
    x = x.astype(np.int64)                          # sent as uint8 (spikes are 0 and 1): 8 times less to send
    with tempfile.TemporaryDirectory(prefix="run-rank-") as tmp:
        for name, data in files.items():           # model.onnx / model.net, as rank 0 wrote them
            (Path(tmp) / name).write_bytes(data)
        for name in names:
            shard.shared(lambda part: BACKENDS[name](net, part, cfg.verify, Path(tmp)), x)  # noqa: B023


def _load_after_rank0(cfg: RunConfig):
    """Rank 0 reads (and caches) the data first; the others then read the cache."""
    import torch.distributed as dist
    rank, world = train.rank_world()
    if world > 1 and rank != 0:
        dist.barrier()
    splits = store.training_splits(cfg.data)
    if world > 1 and rank == 0:
        dist.barrier()
    return splits


def _run(cfg: RunConfig, target: str, out: Path, final: Path) -> dict:
    timings, t0 = {}, time.perf_counter()
    write_json(out / "config.json", cfg.to_dict())
    _stage(f"data: {cfg.data.name}, up to {cfg.data.n_train or 'all'} train / {cfg.data.n_test or 'all'} test, "
           f"T = {cfg.data.n_bins} bins of {cfg.data.duration_us / cfg.data.n_bins / 1000:g} ms")
    train_set, test_set = _load_after_rank0(cfg)
    timings["data_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _stage(f"training ({cfg.train.method}, {cfg.train.epochs} epochs, selection {cfg.select.method}"
           + (f" at ratio {cfg.select.ratio})" if cfg.select.method != "full" else ")"))
    result = train.train(cfg, train_set.frames, train_set.labels, len(train_set.classes),
                         test=(test_set.frames, test_set.labels))
    timings["train_s"] = time.perf_counter() - t0
    atomic_write(out / "model.pt", lambda p: torch.save(result.model.state_dict(), p))

    model = result.model.deployed()
    dt = cfg.data.duration_us / cfg.data.n_bins * 1e-6
    nir_export.write(nir_export.to_nir(model, dt, cfg.data.n_bins), out / "model.nir")
    written = nir_checks.read(out / "model.nir")            # backends get the graph as written, nothing else
    net = read.load(written)
    problems = nir_contract.contract_errors(written) + [str(v) for v in loihi2.check(net)]
    if problems:
        raise GraphError(f"model.nir: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    onnx_export.write(onnx_export.to_onnx(net), out / "model.onnx")
    onnx_export.write(onnx_export.to_onnx(net, integer=False), out / "model_float.onnx")
    try:        # netx cannot store every valid Loihi graph (e.g. weight_exp < 0): only its own target needs it
        netx_export.write(net, out / "model.net")
        netx_note = None
    except GraphError as e:
        if "netx" in TARGETS[target]:
            raise
        netx_note = f"model.net not written: {e}"

    n = min(cfg.verify.samples or len(test_set.labels), len(test_set.labels))
    frames, labels = test_set.frames[:n], test_set.labels[:n]
    x = input_spikes(net, frames)
    t0 = time.perf_counter()
    _stage(f"golden model (integer mode) on {n} test samples")
    gold = golden_spikes(model, frames)
    timings["golden_s"] = time.perf_counter() - t0
    names = list(net.populations)
    accuracy = {"golden": float((predict(gold[-1]) == labels).mean())}
    backends, spikes = {}, {}
    shard.send((net, x.astype(np.uint8), {f: (out / f).read_bytes() for f in ("model.onnx", "model.net")
                                          if (out / f).is_file()}, list(TARGETS[target])))
    for name in TARGETS[target]:
        _stage(f"backend {name}")
        t0 = time.perf_counter()
        trace = shard.shared(lambda part: BACKENDS[name](net, part, cfg.verify, out), x)  # noqa: B023
        spikes[name] = [trace.spikes[k] for k in names]
        timings[f"{name}_s"] = time.perf_counter() - t0
        backends[name] = equivalence.compare(gold, spikes[name], names)
        accuracy[name] = float((predict(spikes[name][-1]) == labels).mean())

    _stage("float ONNX model (no integer truncation): agreement with the golden model")
    float_trace = onnx_backend.simulate(net, x, out / "model_float.onnx")
    float_spikes = [float_trace.spikes[k] for k in names]
    float_cmp = equivalence.compare(gold, float_spikes, names)
    float_pred = predict(float_spikes[-1])
    onnx_float = {"identical_samples": float_cmp["identical"], "compared": float_cmp["compared"],
                  "spike_agreement": {k: 1 - v["mismatched"] / g.size
                                      for (k, v), g in zip(float_cmp["layers"].items(), gold)},
                  "first_divergence": float_cmp["first_divergence"],
                  "prediction_agreement": float((float_pred == predict(gold[-1])).mean()),
                  "accuracy": float((float_pred == labels).mean())}

    loihi = {"resources": loihi2.estimate(net), "activity": loihi2.activity(net, x, dict(zip(names, gold)))}
    silent = find_silent(net, x, gold)
    report = {
        "accuracy": accuracy,
        "loihi2": loihi,
        "backends": backends,
        "onnx_float": onnx_float,
        "netx": netx_note or "model.net written",
        "test_samples": int(n),
        **({"samples_requested": cfg.verify.samples} if cfg.verify.samples > n else {}),
        "silent_layers": silent,
        "verdict": verdict(backends, silent, names[-1]),
        "data": dataset.summary(cfg.data, train_set, test_set),
        "training": {"distilled": cfg.data.distilled or None, "ranks": train.rank_world()[1],
                     "method": cfg.select.method,
                     "ratio": cfg.select.ratio if cfg.select.method != "full" else 0.0,
                     "trainer": cfg.train.method, "epochs": cfg.train.epochs,
                     "examples_processed": result.examples_processed,
                     "epoch_examples": list(result.epoch_examples), "pruned_epochs": list(result.pruned_epochs),
                     "epoch_seconds": [round(s, 3) for s in result.epoch_seconds],
                     "epoch_loss": [round(x, 5) for x in result.epoch_loss],
                     "epoch_test_accuracy_float": [round(x, 4) for x in result.epoch_test_accuracy]},
        "model": {"arch": cfg.model.arch,
                  "layers": [{"name": p.target, "kind": p.synapse.kind, "neurons": list(net.populations[p.target].shape),
                              "weights": list(p.synapse.weight.shape), "weight_exp": p.synapse.exp,
                              "du": net.populations[p.target].du, "dv": net.populations[p.target].dv,
                              "vth": net.populations[p.target].vth} for p in net.projections],
                  "n_bins": net.n_bins, "n_steps": net.n_steps, "dt_s": net.dt},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "config": cfg.to_dict(),
    }
    write_json(out / "report.json", report)
    _certify(cfg, target, out, final, written, net, x, dict(zip(names, gold)), backends, report, len(test_set.labels),
             netx_note)
    plots.training_curve(out / "training.png", result.epoch_loss, result.epoch_test_accuracy,
                         accuracy["golden"])
    shown = "lava" if "lava" in spikes else "reference"
    plots.rasters(out / "rasters.png", gold, spikes[shown], names, shown, sample=0)
    html_report.write(out, report, title=f"nmpipe run: {cfg.data.name}, target {target}")
    return report


def _certify(cfg: RunConfig, target: str, out: Path, final: Path, graph, net, x, gold: dict, backends: dict,
             report: dict, test_size: int, netx_note: str | None) -> None:
    """vectors.h5 (the first verify.vectors samples: input and the golden model's spikes in every layer) and
    certificate.json, written after every file it hashes."""
    n = len(x)
    v = min(cfg.verify.vectors, n)
    handoff.write_vectors(out / handoff.VECTORS, graph, net, x[:v], {k: g[:v] for k, g in gold.items()}, {})
    ran = TARGETS[target]
    not_checked = [f"{b}: not run (--target {target})" + (f"; {netx_note}" if b == "netx" and netx_note else "")
                   for b in BACKENDS if b not in ran]
    if n < test_size:
        not_checked.append(f"samples: {n} of the {test_size} test samples compared (verify.samples)")
    not_checked += [f"vectors: {v} of the {n} compared samples are stored in {handoff.VECTORS}; recheck replays "
                    "those (verify.vectors, --vectors)",
                    "model_float.onnx: measured without integer truncation, not certified (report.json onnx_float)",
                    "model.pt: the trained PyTorch model; not needed to recheck, not hashed",
                    "no Loihi 2 chip was run: Lava's bit-accurate CPU simulation (Loihi2SimCfg fixed_pt) stands in"]
    against = "golden model: model.pt in integer mode (PyTorch), on the same input spikes"
    cert = handoff.certificate(
        "run", out, final, {b: handoff.backend_row(r, against) for b, r in backends.items()}, list(ran),
        handoff.layer_rows(net, graph, gold, n), report["verdict"],
        {"file": handoff.VECTORS, "samples": v, "steps": int(x.shape[1]), "dt_s": net.dt,
         "which": f"the first {v} of the {n} compared test samples", "expected": "the golden model's spikes"},
        not_checked, train.rank_world()[1],
        {"accuracy": report["accuracy"], "test_samples": n,
         "silent_layers": [s["layer"] for s in report["silent_layers"]]})
    handoff.write_certificate(out, cert)


def find_silent(net, x, gold: list) -> list[dict]:
    """Layers of the golden model that never spiked in any compared sample, with the likely cause."""
    names = list(net.populations)
    counts = {"input": int(x.sum()), **{k: int(g.sum()) for k, g in zip(names, gold)}}
    peaks = reference.simulate(net, x).peak if 0 in list(counts.values())[1:] else {}
    layers = [{"layer": k, "spikes": counts[k], "peak_fraction": peaks.get(k), "spiking": True,
               "sources": {p.source: counts[p.source] for p in net.projections if p.target == k}} for k in names]
    return equivalence.silent_layers(layers, len(x))


def verdict(backends: dict, silent: list[dict], output: str) -> str:
    """DIVERGED when a backend differs from the golden model; else SILENT when the output layer never spiked in
    any compared sample (identical, but nothing was certified); else IDENTICAL."""
    if any(b["identical"] != b["compared"] for b in backends.values()):
        return "DIVERGED"
    return "SILENT" if any(s["layer"] == output for s in silent) else "IDENTICAL"


EXIT_CODES = {"IDENTICAL": 0, "DIVERGED": 1, "SILENT": 3}


def silence_lines(report: dict) -> list[str]:
    """The printed warning for every silent layer, and what a silent output means for the verdict."""
    lines = [f"WARNING: layer {s['layer']} never spiked in any of the {s['samples']} compared samples: {s['cause']}"
             for s in report.get("silent_layers", [])]
    if report.get("verdict") == "SILENT":
        lines.append("SILENT: the output never spiked, so identical spikes certify nothing; exit status 3")
    return lines


def summary(report: dict, out: Path) -> str:
    acc = ", ".join(f"{k} {v:.4f}" for k, v in report["accuracy"].items())
    asked = (f"; {report['samples_requested']} asked for, the test split has {report['test_samples']}"
             if "samples_requested" in report else "")
    lines = [f"test accuracy ({report['test_samples']} samples{asked}): {acc}"]
    curve = report["training"].get("epoch_test_accuracy_float", [])
    if curve:
        marks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1})
        lines.append(f"training: {len(curve)} epochs in {report['timings_s'].get('train_s', 0):.0f} s; float test "
                     "accuracy by epoch " + ", ".join(f"{k + 1}: {curve[k]:.3f}" for k in marks))
    for name, b in report["backends"].items():
        verdict = "IDENTICAL" if b["identical"] == b["compared"] else "DIVERGED"
        lines.append(f"{name:>9}: {b['identical']}/{b['compared']} samples spike-identical in every layer and "
                     f"step [{verdict}]" + (f", first divergence {b['first_divergence']}"
                                             if b["first_divergence"] else ""))
    a = report["loihi2"]["activity"]["per_inference"]
    r = report["loihi2"]["resources"]
    lines.append(f"Loihi 2: {r['cores']} of {r['resources']['cores_per_chip']} cores; per inference "
                 f"{a['synops']:,.0f} SynOps, {a['spikes']:,.0f} spikes, sparsity {a['sparsity']:.3f}, "
                 f"energy ~{a['energy_uj_estimate']:.2f} uJ (estimate, Loihi 1 per-op figures)")
    f = report["onnx_float"]
    lines.append(f"float ONNX (no truncation): {f['identical_samples']}/{f['compared']} samples spike-identical, "
                 f"predictions agree on {100 * f['prediction_agreement']:.1f}% (measured, not an equivalence claim)")
    lines += silence_lines(report)
    lines.append(f"run folder: {out} (config.json, model.pt, model.nir, model.onnx, model_float.onnx, model.net, "
                 "vectors.h5, certificate.json, report.json, report.html, training.png, rasters.png, divergence.png)")
    lines.append(f"re-check it anywhere from the folder alone: python -m pipeline recheck {out}")
    return "\n".join(lines)
