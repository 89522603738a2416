"""``pipeline run``: data -> training -> deployed integer model -> NIR -> backends -> verification -> run folder."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export import netx_export, nir_export, onnx_export
from hardware.backends import BACKENDS, Options
from hardware.backends import onnx as onnx_backend
from hardware.chip import loihi2
from hardware.errors import GraphError
from hardware.graph import nir_checks, nir_contract, read
from hardware.graph.ir import Network, input_spikes
from hardware.judge import equivalence, metrics, results
from hardware.judge.results import Expected, Measured
from hardware.judge.trace import Trace
from models import delays
from models.rsnn import RSNN
from models.snn import DeployedNet, golden_spikes, predict, undecided
from pipeline import ranks
from pipeline.architecture import build_model
from pipeline.certify import certificate, vectors
from pipeline.config import TARGETS, RunConfig
from pipeline.data import dataset, sets
from pipeline.report import html, plots
from pipeline.report.report import RunReport
from pipeline.runfolder import atomic_write, staged, write_json
from pipeline.train import loop, methods

assert TARGETS["all"] == tuple(BACKENDS), "pipeline/config.py TARGETS names every backend"
GOLDEN = "golden model: model.pt in integer mode (PyTorch), on the same input spikes"


def _stage(text: str) -> None:
    print(f"== {text}", flush=True)


def run(cfg: RunConfig, target: str, out: Path, overwrite: bool = False) -> RunReport:
    """Run every stage and write the run folder (replaced whole, only when the run completes). Under torchrun,
    this is rank 0: every rank trains its share, and the other ranks (:func:`serve`) simulate their share of
    the verification; rank 0 alone writes the folder."""
    preflight(cfg)
    with ranks.Sharing() as share, staged(out, "run", overwrite) as stage:
        return _run(cfg, target, stage, out, share)


def serve(cfg: RunConfig) -> None:
    """A torchrun rank other than 0: train this rank's share, then simulate its share of the verification."""
    data = _load_after_rank0(cfg)
    loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes))
    ranks.serve()


def _load_after_rank0(cfg: RunConfig) -> sets.RunData:
    """Rank 0 reads (and caches) the data first; the others then read the cache."""
    import torch.distributed as dist
    rank, world = ranks.rank_world()
    if world > 1 and rank != 0:
        dist.barrier()
    data = sets.load(cfg.data)
    if world > 1 and rank == 0:
        dist.barrier()
    return data


def preflight(cfg: RunConfig) -> None:
    """What the configuration alone decides, checked before any data is read, simulated or trained: the input
    shape the dataset frames to, and the untrained network (the same architecture, as it would deploy) against
    Loihi 2's structural limits (steps per inference, fan-in per core, cores per chip;
    ``hardware/loihi2.structure``). Integer ranges depend on the trained weights and are checked after training."""
    from pipeline.data.registry import DATASETS
    model = build_model(cfg, dataset.input_shape(cfg.data), len(DATASETS[cfg.data.name].classes))
    dt = cfg.data.duration_us / cfg.data.n_bins * 1e-6
    net = read.load(nir_export.to_nir(model.deployed(), dt, cfg.data.n_bins))
    problems = [str(v) for v in loihi2.structure(net)]
    if problems:
        raise GraphError(f"the configured network would not fit Loihi 2: {problems[0]}"
                         + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                         + "; refused before any data was read or trained (model.* and data.* settings decide it)")


@dataclass(frozen=True)
class _Deployed:
    """The trained model as deployed: its integer form, model.nir as written and read back, netx's note."""
    model: DeployedNet
    graph: object                       # model.nir as written (the NIR graph the backends get)
    net: Network
    netx_note: str                      # why model.net was not written ("" when it was)

    def backends(self, target: str) -> tuple[str, ...]:
        """The backends ``target`` runs: ``all`` without netx where model.net could not be written."""
        return tuple(b for b in TARGETS[target] if b != "netx" or not self.netx_note)


@dataclass(frozen=True)
class _Compared:
    """The verification on the test split, and each backend's own run of it."""
    v: results.Verification
    x: np.ndarray                       # the compared samples' input spikes
    labels: np.ndarray
    test_size: int                      # test samples read (verify.samples may compare fewer)
    own: dict                           # backend -> its trace over the samples' steps, where it ran all of them
    names: list


def _run(cfg: RunConfig, target: str, out: Path, final: Path, share: ranks.Sharing) -> RunReport:
    timings, t0 = {}, time.perf_counter()
    write_json(out / "config.json", cfg.to_dict())
    _stage(f"data: {cfg.data.name}, up to {cfg.data.n_train or 'all'} train / {cfg.data.n_test or 'all'} test, "
           f"T = {cfg.data.n_bins} bins of {cfg.data.duration_us / cfg.data.n_bins / 1000:g} ms")
    data = _load_after_rank0(cfg)
    timings["data_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _stage(f"training ({cfg.train.method}{' with traces' if methods.traced(cfg.train) else ''}, "
           f"{cfg.train.epochs} epochs, selection {cfg.select.method}"
           + (f" at ratio {cfg.select.ratio}" if cfg.select.method != "full" else "")
           + f"; {len(data.train.labels)} training samples, {len(data.val.labels)} held out for validation)")
    result = loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes),
                        monitor=(data.val.frames, data.val.labels))
    timings["train_s"] = time.perf_counter() - t0
    atomic_write(out / "model.pt", lambda p: torch.save(result.model.state_dict(), p))
    deployed = _export(cfg, target, out, result.model)
    compared = _compare(cfg, target, out, deployed, data.test, share, timings)
    report = _report(cfg, data, result, deployed, compared, timings)
    write_json(out / "report.json", report.to_json())
    _certify(cfg, target, out, final, deployed, compared, report)
    plots.training_curve(out / "training.png", result.epoch_loss, result.epoch_accuracy, report.accuracy["golden"],
                         result.eval_epochs)
    if report.training["delays"]:
        plots.delay_histograms(out / "delays.png", report.training["delays"])
    shown = "lava" if "lava" in compared.own else "reference"
    names = compared.names
    plots.rasters(out / "rasters.png", [compared.own["expected"].spikes[k] for k in names],
                  [compared.own[shown].spikes[k] for k in names], names, shown, sample=0)
    html.write(out, report, title=f"nmpipe run: {cfg.data.name}, target {target}")
    return report


def _export(cfg: RunConfig, target: str, out: Path, trained) -> _Deployed:
    """model.nir (checked against the contract and Loihi 2's limits as read back), model.onnx, model_float.onnx
    and, where netx can hold it, model.net."""
    model = trained.deployed()
    dt = cfg.data.duration_us / cfg.data.n_bins * 1e-6
    nir_export.write(nir_export.to_nir(model, dt, cfg.data.n_bins), out / "model.nir")
    written = nir_checks.read(out / "model.nir")            # backends get the graph as written, nothing else
    net = read.load(written)
    problems = nir_contract.contract_errors(written) + [str(v) for v in loihi2.check(net)]
    if problems:
        raise GraphError(f"model.nir: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    onnx_export.write(onnx_export.to_onnx(net), out / "model.onnx")
    onnx_export.write(onnx_export.to_onnx(net, integer=False), out / "model_float.onnx")
    try:        # netx cannot store every valid Loihi graph (e.g. weight_exp < 0, delays on a recurrent layer): only
        netx_export.write(net, out / "model.net")     # its own target needs it; ``all`` runs the others
        netx_note = ""
    except GraphError as e:
        if target == "netx":
            raise
        netx_note = f"model.net not written: {e}"
    return _Deployed(model, written, net, netx_note)


def _compare(cfg: RunConfig, target: str, out: Path, deployed: _Deployed, test, share: ranks.Sharing,
             timings: dict) -> _Compared:
    """The golden model, then every backend of ``target``, on the first ``verify.samples`` test samples."""
    net = deployed.net
    n = min(cfg.verify.samples or len(test.labels), len(test.labels))
    frames, labels = test.frames[:n], test.labels[:n]
    x = input_spikes(net, frames)
    steps, tail = x.shape[1], equivalence.tail_steps(net)
    t0 = time.perf_counter()
    _stage(f"golden model (integer mode) on {n} test samples")
    names = list(net.populations)
    expected = Expected(Trace(dict(zip(names, golden_spikes(deployed.model, frames, tail=tail)))), "golden", GOLDEN)
    timings["golden_s"] = time.perf_counter() - t0
    options = Options(out, cfg.verify.workers, cfg.verify.chunk, one_per_sample=cfg.verify.one_per_sample)
    share.send(net, x, out, list(deployed.backends(target)), options)
    float_trace = onnx_backend.simulate(net, x, out / "model_float.onnx")
    gathered = share.simulate(net, options)

    def simulate(backend, xs):
        _stage(f"backend {backend.name}")
        return gathered(backend, xs)
    v = equivalence.verify(net, x, expected, [BACKENDS[b] for b in deployed.backends(target)], options,
                           [Measured("model_float.onnx", float_trace, "float32, no integer truncation or wrapping")],
                           simulate)
    timings.update({f"{b.backend}_s": b.seconds for b in v.certifying})
    own = {k: t.window(steps) for k, t in v.traces.items() if t.samples == n}      # a backend run on fewer
                                                                                      # samples has no accuracy
    return _Compared(v, x, labels, len(test.labels), own, names)


def _report(cfg: RunConfig, data, result, deployed: _Deployed, compared: _Compared, timings: dict) -> RunReport:
    net, own, names, labels, x = deployed.net, compared.own, compared.names, compared.labels, compared.x
    pred = {k: predict(t.spikes[names[-1]]) for k, t in own.items()}
    accuracy = {"golden" if k == "expected" else k: float((p == labels).mean()) for k, p in pred.items()}
    tied = undecided(own["expected"].spikes[names[-1]])
    unsure = {"samples": int(tied.sum()), "correct_by_lowest_index": int((tied & (pred["expected"] == labels)).sum()),
              "accuracy_counting_them_wrong": float((~tied & (pred["expected"] == labels)).mean()),
              "rule": "spike count argmax, lowest index on ties (model.nir's declared readout); a sample with no "
                      "output spike or a tie for the most is undecided"}
    gold = dict(zip(names, (own["expected"].spikes[k] for k in names)))
    return RunReport(
        compared.v, accuracy, int(len(labels)), cfg.verify.samples,
        dataset.summary(cfg.data, data.train, data.test, data.val), _training(cfg, data, result),
        {"arch": cfg.model.arch,
         "layers": [{"name": p.target, "kind": p.synapse.kind, "neurons": list(net.populations[p.target].shape),
                     "weights": list(p.synapse.weight.shape), "weight_exp": p.synapse.exp,
                     "du": net.populations[p.target].du, "dv": net.populations[p.target].dv,
                     "vth": net.populations[p.target].vth} for p in net.projections],
         "n_bins": net.n_bins, "n_steps": net.n_steps, "dt_s": net.dt},
        {"resources": loihi2.estimate(net), "activity": loihi2.activity(net, x, gold).to_dict()},
        {"prediction_agreement": float((pred["model_float.onnx"] == pred["expected"]).mean()),
         "accuracy": accuracy["model_float.onnx"]},
        deployed.netx_note or "model.net written", {k: round(s, 2) for k, s in timings.items()}, cfg.to_dict(),
        metrics=metrics.measure(net, x, gold).to_dict(), undecided=unsure)


def _training(cfg: RunConfig, data, result) -> dict:
    """What the report says of training: selection, trainer, epochs, the per-epoch record."""
    return {"distilled": cfg.data.distilled or None, "ranks": ranks.rank_world()[1], "method": cfg.select.method,
            "ratio": cfg.select.ratio if cfg.select.method != "full" else 0.0, "trainer": cfg.train.method,
            "traces": methods.traced(cfg.train),
            "trainer_computes": methods.describe(cfg.train, isinstance(result.model, RSNN)),
            "epochs": cfg.train.epochs, "train_samples": len(data.train.labels), "val_samples": len(data.val.labels),
            "examples_processed": result.examples_processed, "epoch_examples": list(result.epoch_examples),
            "pruned_epochs": list(result.pruned_epochs),
            "epoch_seconds": [round(s, 3) for s in result.epoch_seconds],
            "epoch_loss": [round(a, 5) for a in result.epoch_loss],
            "epoch_val_accuracy_float": [round(a, 4) for a in result.epoch_accuracy],
            "eval_epochs": list(result.eval_epochs), "eval_samples": result.eval_samples,
            "eval_seconds": round(result.eval_seconds, 3),
            "work_fraction": result.examples_processed / max(1, len(data.train.labels) * cfg.train.epochs),
            "delays": delays.learnt(result.model.deployed())}


def _certify(cfg: RunConfig, target: str, out: Path, final: Path, deployed: _Deployed, compared: _Compared,
             report: RunReport) -> None:
    """vectors.h5 (input and the golden model's spikes in every layer, for the first verify.vectors samples and
    the diverged ones) and certificate.json, written after every file it hashes."""
    v, x, net, graph = compared.v, compared.x, deployed.net, deployed.graph
    n = v.samples
    diverged = sorted({i for b in v.certifying for i in b.diverged})
    idx = vectors.choose(n, cfg.verify.vectors, diverged)
    vectors.write(out / vectors.VECTORS, graph, net, x[idx], v.traces["expected"].take(idx))
    ran = deployed.backends(target)
    not_checked = [f"{b}: not run" + ("" if b in TARGETS[target] else f" (--target {target})")
                   + (f"; {deployed.netx_note}" if b == "netx" and deployed.netx_note else "")
                   for b in BACKENDS if b not in ran]
    if n < compared.test_size:
        not_checked.append(f"samples: {n} of the {compared.test_size} test samples compared (verify.samples)")
    stored_div = [i for i in diverged if i in set(idx.tolist())]
    not_checked += [f"vectors: {len(idx)} of the {n} compared samples are stored in {vectors.VECTORS} (the first "
                    f"{min(cfg.verify.vectors, n)}" + (f" and {len(stored_div)} of the {len(diverged)} that "
                                                       "diverged" if diverged else "")
                    + "); recheck replays those (verify.vectors, --vectors)",
                    "model.pt: the trained PyTorch model; not needed to recheck, not hashed",
                    "no Loihi 2 chip was run: Lava's bit-accurate CPU simulation (Loihi2SimCfg fixed_pt) stands in"]
    info = certificate.VectorsInfo(len(idx), x.shape[1], v.tail_steps, net.dt, tuple(int(i) for i in idx),
                                   f"test samples {_ranges(idx)} of the {n} compared",
                                   "the golden model's spikes (model.pt in integer mode), run on past each "
                                   f"sample's {x.shape[1]} steps for {v.tail_steps} more with no input")
    t = report.training
    cert = certificate.certify("run", out, final, v, info, vectors.node_names(graph), not_checked, {
        "accuracy": report.accuracy, "test_samples": n,
        "classes": {"present": int(len(np.unique(compared.labels))), "of": len(report.data["test"]["per_class"])},
        "undecided": report.undecided,
        "training": {k: t[k] for k in ("trainer", "traces", "trainer_computes", "epochs", "method", "ratio",
                                       "train_samples", "examples_processed")}})
    cert.write(out)


def _ranges(idx: np.ndarray) -> str:
    """0-31, 40, 57-58: sample indices as ranges."""
    parts, start = [], None
    for i, k in enumerate(idx.tolist()):
        if start is None:
            start = k
        if i + 1 == len(idx) or idx[i + 1] != k + 1:
            parts.append(f"{start}" if start == k else f"{start}-{k}")
            start = None
    return ", ".join(parts)
