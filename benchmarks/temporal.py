"""The temporal workload measured: spoken digits (synthesised speech through the cochlea model, 64 channels, 50 bins
of 20 ms) on the default recurrent SNN (64 -> 256 recurrent CUBA LIF -> 20), side by side in one run.

Protocol, every number on the speaker-disjoint test split (6 voices never heard in training, 1,080 recordings):

- ``example``: the README's temporal command, ``run --target all --set data.name=spoken_digits --set
  train.epochs=40``, from an empty data cache (synthesis included), timed as a user runs it; its verdict, accuracy
  and per-backend timings. 40 epochs were chosen on the validation speakers (benchmarks/choose_temporal.py).
- ``trainers``: BPTT and SLTT (with its default eligibility traces: memory flat in T; SLTT-K is refused on a
  recurrent network) with the run's defaults otherwise (40 epochs, AdamW 2e-3, channel
  shift 2), seeds 0 and 1, trained on the training speakers less the 2 held out for validation; per model the
  deployed integer model's test accuracy (golden model) and the float QAT model's (training-mode forward).
- ``ceiling``: a non-spiking float GRU (64 -> 138 -> 20: 87,236 parameters against the SNN's 87,040) on the same
  binary input frames, the same channel shift, Adam 3e-3, batch 64, 40 epochs, the epoch with the best
  validation accuracy kept; seeds 0 and 1.
- ``lava``: the BPTT seed-0 model on Lava fixed_pt, 2 workers: the whole test split side by side (the batched path
  recurrent networks take), and the first 100 samples one network per sample.

- ``shd_sized`` (``--shd-sized``): the example at SHD's size, ``data.channels=700``, from an empty cache (synthesis
  through a 700-channel cochlea included), with any further settings given (the chosen delays).
- ``shd_epoch_costs`` (``--epoch-costs``): what one training epoch costs at SHD's 700 channels (the built-in
  spoken digits' 3,520 training recordings, batch 64) without delays, with per-neuron and with per-synapse delays
  of up to 16 steps, side by side in one run: wall and processor seconds of the second of two epochs, and the
  40 epochs it implies: why the SHD-sized example is timed without delays.
- ``delays`` (``--delays``, after ``benchmarks/choose_delays.py --merge``): the delayed network chosen on the
  validation speakers and the tuned float ceiling, from ``benchmarks/results/choose_delays.json``; the chosen
  network's two models (seeds 0 and 1) run on every integer backend (reference, Lava side by side, ONNX, netx)
  over the whole test split against the golden model, every layer and step; and the README's temporal example
  with the chosen settings (its delays and epochs), from an empty cache, timed (``delays/example``); written
  into temporal.json's ``delays`` object, the rest of the file kept. ``--also CANDIDATE`` then runs another
  candidate's two models on every backend the same way (``delays/also_identical``), e.g. a dense one, which netx runs.

Writes benchmarks/results/temporal.json and temporal.txt.

    .venv/bin/python benchmarks/temporal.py
    .venv/bin/python benchmarks/temporal.py --delays [--no-example]
    .venv/bin/python benchmarks/temporal.py --also "dense, per synapse, D 16"
    .venv/bin/python benchmarks/temporal.py --shd-sized [SETTING=VALUE ...]
    .venv/bin/python benchmarks/temporal.py --epoch-costs
"""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from export import nir_export
from hardware.backends import lava
from hardware.graph import read
from hardware.graph.ir import input_spikes
from models.snn import golden_spikes, predict
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets
from pipeline.train import augment, loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "temporal"
BASE = ["data.name=spoken_digits", "train.epochs=40"]
SEEDS = (0, 1)
TRAINERS = ("bptt", "sltt")
LABEL = {"bptt": "BPTT", "sltt": "SLTT+traces"}
GRU_HIDDEN, GRU_EPOCHS = 138, 40


def example(settings: tuple[str, ...] = BASE) -> dict:
    """``run --target all`` with ``settings`` from an empty data cache, timed as a user runs it."""
    sets = [a for item in settings for a in ("--set", item)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pipeline", "run", "--target", "all", *sets, "--out",
                              f"{tmp}/run", "--set", f"data.cache={tmp}/cache"],
                             cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if run.returncode != 0:
            raise SystemExit(run.stderr[-3000:])
        report = json.loads(Path(f"{tmp}/run/report.json").read_text())
    return {"command": "python -m pipeline run --target all " + " ".join(sets),
            "seconds": round(seconds, 1),
            "verdict": report["verdict"], "accuracy": report["accuracy"], "timings_s": report["timings_s"],
            "backends": {k: {"compared": b["compared"], "identical": b["identical"]}
                         for k, b in report["backends"].items()},
            "not_compared": report["not_compared"], "test_samples": report["test_samples"],
            "loihi2_cores": report["loihi2"]["resources"]["cores"],
            "summary": run.stdout.strip().splitlines()[-12:]}


def gru_ceiling(data, seed: int, shift: int) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    gru, out = nn.GRU(data.train.frames.shape[2], GRU_HIDDEN, batch_first=True), nn.Linear(GRU_HIDDEN, 20)
    params = sum(p.numel() for p in list(gru.parameters()) + list(out.parameters()))
    opt = torch.optim.Adam(list(gru.parameters()) + list(out.parameters()), 3e-3)
    as_input = lambda f: torch.from_numpy(f).float().clamp(max=1)          # noqa: E731  (binary, as the SNN sees)
    x, y = as_input(data.train.frames), torch.from_numpy(data.train.labels)

    def acc(split) -> float:
        with torch.no_grad():
            return float((out(gru(as_input(split.frames))[0][:, -1]).argmax(1).numpy() == split.labels).mean())
    best = (-1.0, 0, 0.0)
    for epoch in range(GRU_EPOCHS):
        perm = torch.randperm(len(y), generator=gen)
        for b in range(0, len(y), 64):
            i = perm[b:b + 64]
            loss = F.cross_entropy(out(gru(augment.random_shift(x[i], shift, gen))[0][:, -1]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        val = acc(data.val)
        if val > best[0]:
            best = (val, epoch + 1, acc(data.test))
    return {"seed": seed, "parameters": params, "val_accuracy": best[0], "epoch": best[1], "test_accuracy": best[2]}


def identical_counts(deployed, data, dt: float, n_bins: int) -> dict[str, list[int]]:
    """[compared, identical] samples per integer backend, against the golden model over the whole test split."""
    from export import netx_export, onnx_export
    from hardware.backends import BACKENDS, Options
    from hardware.errors import GraphError
    from hardware.judge import equivalence
    from hardware.judge.results import Expected
    from hardware.judge.trace import Trace
    net = read.load(nir_export.to_nir(deployed, dt, n_bins))
    x = input_spikes(net, data.test.frames)
    gold = golden_spikes(deployed, data.test.frames, tail=equivalence.tail_steps(net))
    expected = Expected(Trace(dict(zip(net.populations, gold))), "golden", "the trained model in integer mode")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_export.write(onnx_export.to_onnx(net), Path(tmp) / "model.onnx")
        backends = ["reference", "lava", "onnx"]
        with contextlib.suppress(GraphError):        # netx holds dense layers' delays only: named when absent
            netx_export.write(net, Path(tmp) / "model.net")
            backends.append("netx")
        v = equivalence.verify(net, x, expected, [BACKENDS[b] for b in backends], Options(Path(tmp), 2, 250,
                                                                                          progress=False))
    return {b.backend: [b.compared, b.identical] for b in v.backends}


def candidate_identical(name: str) -> tuple[dict[str, list[int]], object]:
    """[compared, identical] per backend, summed over the seeds' models of choose_delays' SNN candidate ``name``
    (its saved models, else trained again)."""
    import choose_delays
    cfg = registry.resolve(apply_overrides(RunConfig(), BASE + choose_delays.SNN[name]))
    data = sets.load(cfg.data)
    identical: dict[str, list[int]] = {}
    for seed in SEEDS:
        deployed = choose_delays.load("snn", name, seed, data, 0).deployed()
        for b, (n, same) in identical_counts(deployed, data, cfg.data.duration_us / cfg.data.n_bins * 1e-6,
                                             cfg.data.n_bins).items():
            identical[b] = [identical.get(b, [0, 0])[0] + n, identical.get(b, [0, 0])[1] + same]
    return identical, data


EPOCH_COSTS = {"no delays": [], "per neuron, D 16": ["model.delays=16", "model.delay_kind=neuron"],
               "per synapse, D 16": ["model.delays=16", "model.delay_kind=synapse"]}


def epoch_costs() -> dict:
    """temporal.json's ``shd_epoch_costs``: one training epoch at 700 channels per delay setting (the second of
    two, the first warming up), and the 40 epochs of the example it implies."""
    shd = BASE[:1] + ["data.channels=700", "train.epochs=2"]
    data = sets.load(registry.resolve(apply_overrides(RunConfig(), shd)).data)
    out = {}
    for name, settings in EPOCH_COSTS.items():
        cfg = registry.resolve(apply_overrides(RunConfig(), shd + settings))
        with contextlib.redirect_stdout(io.StringIO()):
            res = loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes))
        out[name] = {"epoch_s": round(res.epoch_seconds[-1], 1), "epoch_cpu_s": round(res.epoch_cpu_seconds[-1], 1),
                     "forty_epochs_min": round(40 * res.epoch_seconds[-1] / 60, 1)}
        print(name, json.dumps(out[name]), flush=True)
    return {"settings": dict(EPOCH_COSTS), "train_samples": int(len(data.train.labels)),
            "batch_size": RunConfig().train.batch_size, "costs": out}


def delays_object(previous: dict | None = None) -> dict:
    """temporal.json's ``delays``: choose_delays.json's choices and the chosen network's backends; with
    ``previous`` (``--no-example``), its README example is kept, not run again (its command says what it ran)."""
    import choose_delays
    choice = json.loads((ROOT / "benchmarks" / "results" / "choose_delays.json").read_text())
    snn, ceiling = choice["families"]["snn"], choice["families"]["ceiling"]
    items = dict(o.split("=") for o in choose_delays.SNN[snn["chosen"]])
    identical, data = candidate_identical(snn["chosen"])
    ran = previous["example"] if previous else example(
        tuple(BASE) + tuple(o for o in choose_delays.SNN[snn["chosen"]] if not o.startswith("model.arch")))
    return {"max_delay": int(items.get("model.delays", 0)), "kind": "per-" + items.get("model.delay_kind", "synapse"),
            "example": ran,
            "chosen": snn["chosen"], "deployed_accuracy": snn["test_mean"],
            "no_delay_accuracy": snn["without_delays_test_mean"],
            "validation_accuracy": snn["validation"][snn["chosen"]],
            "no_delay_validation_accuracy": snn["validation"][snn["without_delays"]],
            "ceiling_tuned": {"model": ceiling["chosen"].split(",")[0], "setting": ceiling["chosen"],
                              "validation_accuracy": ceiling["validation"][ceiling["chosen"]],
                              "test_accuracy": ceiling["test_mean"]},
            "identical": identical, "seeds": list(SEEDS), "test_samples": int(len(data.test.labels)),
            "protocol": "choices on the validation speakers (benchmarks/choose_delays.py); test split once; "
                        "identical: [compared, identical] test samples summed over both seeds' models"}


def write_text(results: dict) -> None:
    """temporal.txt from temporal.json's results, with the delays and SHD-sized lines where they were measured."""
    ex, bptt = results["example"], results["bptt"]
    lines = [
        "spoken digits, speaker-disjoint test split "
        f"({results['test_samples']} recordings), mean of seeds {', '.join(map(str, SEEDS))}",
        f"{'model':44s} {'test accuracy':>14s}",
        *(f"{'recurrent SNN, ' + LABEL[m] + ', deployed (integer)':44s} {results[m]['accuracy']:14.4f}"
          for m in TRAINERS),
        f"{'recurrent SNN, BPTT, float QAT':44s} {bptt['float_qat_accuracy']:14.4f}",
        f"{'GRU ceiling (float, ' + str(results['gru'][0]['parameters']) + ' parameters)':44s} "
        f"{results['float_ceiling_accuracy']:14.4f}",
        f"quantisation gap {results['quantisation_gap_pt']:.2f} points; deployed below the ceiling by "
        f"{results['ceiling_gap_pt']:.2f} points",
        f"Lava fixed_pt, 2 workers, {results['steps_per_sample']} steps per sample: side by side "
        f"{results['lava_samples_per_s']:.1f} samples/s (test split in {results['lava_test_split_s']:.0f} s), one "
        f"network per sample {results['lava_one_per_sample_samples_per_s']:.1f} samples/s: "
        f"{results['lava_speedup']:.1f}x; spike-identical to the golden model: {results['lava_identical_to_golden']}",
        f"README example from an empty cache: {ex['seconds']:.0f} s, verdict {ex['verdict']}, golden accuracy "
        f"{ex['accuracy']['golden']:.4f}",
    ]
    if "delays" in results:
        d, c = results["delays"], results["delays"]["ceiling_tuned"]
        gain = 100 * (d["validation_accuracy"] - d["no_delay_validation_accuracy"])
        below = (100 * (d["validation_accuracy"] - c["validation_accuracy"]),
                 100 * (d["deployed_accuracy"] - c["test_accuracy"]))
        lines += [
            f"delays chosen on the validation speakers: {d['chosen']} (validation {d['validation_accuracy']:.4f}, "
            f"without delays {d['no_delay_validation_accuracy']:.4f}: {gain:+.2f} points; target +2: "
            f"{'met' if gain >= 2 else 'missed'})",
            f"  deployed test accuracy {d['deployed_accuracy']:.4f}, without delays {d['no_delay_accuracy']:.4f}: "
            f"{100 * (d['deployed_accuracy'] - d['no_delay_accuracy']):+.2f} points",
            f"  tuned ceiling {c['setting']}: validation {c['validation_accuracy']:.4f}, test {c['test_accuracy']:.4f};"
            f" delayed SNN minus ceiling: validation {below[0]:+.2f}, test {below[1]:+.2f} points; target within 1 "
            "point: " + ", ".join(f"{where} " + ("met" if b >= -1 else f"missed by {-1 - b:.2f}")
                                  for where, b in zip(("validation", "test"), below)),
            "  identical to the golden model, test samples over both seeds: " + ", ".join(
                f"{b} {same}/{n}" for b, (n, same) in d["identical"].items())
            + ("" if "netx" in d["identical"] else " (netx not compared: model.net is not written for it)"),
            *(f"  also {name}: " + ", ".join(f"{b} {same}/{n}" for b, (n, same) in counts.items())
              for name, counts in d.get("also_identical", {}).items()),
            f"  README example with {' '.join(d['example']['command'].split(' --set ')[3:])} from an empty cache: "
            f"{d['example']['seconds']:.0f} s, verdict {d['example']['verdict']}, golden accuracy "
            f"{d['example']['accuracy']['golden']:.4f}"]
    if "shd_sized" in results:
        s = results["shd_sized"]
        within = s["seconds"] <= 15 * 60
        lines += [f"SHD-sized example from an empty cache: {s['seconds']:.0f} s (target 15 min on 2 cores: "
                  f"{'met' if within else 'missed'}), verdict {s['verdict']}, golden accuracy "
                  f"{s['accuracy']['golden']:.4f}", f"  {s['command']}",
                  "  timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in s["timings_s"].items())]
    if "shd_epoch_costs" in results:
        e = results["shd_epoch_costs"]
        lines += [f"one training epoch at 700 channels ({e['train_samples']} recordings, batch {e['batch_size']}):"]
        data_min = results["shd_sized"]["timings_s"]["data_s"] / 60 if "shd_sized" in results else None
        lines += [f"  {name:20s} {c['epoch_s']:6.1f} s ({c['epoch_cpu_s']:.1f} s processor), 40 epochs "
                  f"{c['forty_epochs_min']:.1f} min" + ("" if data_min is None else
                                                          f"; with the SHD-sized synthesis "
                                                          f"{data_min + c['forty_epochs_min']:.1f} min")
                  for name, c in e["costs"].items()]
    harness.write_text(OUT.with_suffix(".txt"), "\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    torch.set_num_threads(2)
    if "--shd-sized" in sys.argv[1:]:             # SHD's 700 channels on the built-in spoken digits, end to end
        results = json.loads(OUT.with_suffix(".json").read_text())
        results["shd_sized"] = example(tuple(BASE) + ("data.channels=700",) + tuple(sys.argv[sys.argv.index(
            "--shd-sized") + 1:]))
        harness.write_json(OUT.with_suffix(".json"), results, indent=1)
        write_text(results)
        return
    if "--epoch-costs" in sys.argv[1:]:           # what delays cost per epoch at SHD's size
        results = json.loads(OUT.with_suffix(".json").read_text())
        results["shd_epoch_costs"] = epoch_costs()
        harness.write_json(OUT.with_suffix(".json"), results, indent=1)
        write_text(results)
        return
    if "--also" in sys.argv[1:]:                  # another delayed candidate on every backend (e.g. one netx runs)
        results = json.loads(OUT.with_suffix(".json").read_text())
        name = sys.argv[sys.argv.index("--also") + 1]
        results["delays"].setdefault("also_identical", {})[name] = candidate_identical(name)[0]
        harness.write_json(OUT.with_suffix(".json"), results, indent=1)
        write_text(results)
        return
    if "--delays" in sys.argv[1:]:
        results = json.loads(OUT.with_suffix(".json").read_text())
        results["delays"] = delays_object(results["delays"] if "--no-example" in sys.argv[1:] else None)
        harness.write_json(OUT.with_suffix(".json"), results, indent=1)
        write_text(results)
        return
    results: dict = {"protocol": __doc__.split("\n\n", 1)[1].rsplit("\n\nWrites", 1)[0]}
    results["example"] = example()
    print(json.dumps(results["example"]), flush=True)
    cfg0 = registry.resolve(apply_overrides(RunConfig(), BASE))
    data = sets.load(cfg0.data)
    models, runs = {}, []
    for method in TRAINERS:
        for seed in SEEDS:
            cfg = registry.resolve(apply_overrides(RunConfig(), BASE + [f"train.method={method}",
                                                                        f"train.seed={seed}"]))
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                res = loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes))
            deployed = res.model.deployed()
            models[method, seed] = deployed
            runs.append({"trainer": method, "seed": seed, "train_s": round(time.perf_counter() - t0, 1),
                         "deployed_accuracy": float((predict(golden_spikes(deployed, data.test.frames)[-1])
                                                     == data.test.labels).mean()),
                         "float_qat_accuracy": loop.accuracy(res.model, data.test.frames, data.test.labels)})
            print(json.dumps(runs[-1]), flush=True)
    results["runs"] = runs
    for method in TRAINERS:
        mine = [r for r in runs if r["trainer"] == method]
        results[method] = {"accuracy": float(np.mean([r["deployed_accuracy"] for r in mine])),
                           "float_qat_accuracy": float(np.mean([r["float_qat_accuracy"] for r in mine])),
                           "train_s": float(np.mean([r["train_s"] for r in mine]))}
    results["gru"] = [gru_ceiling(data, seed, cfg0.train.augment_shift) for seed in SEEDS]
    print(json.dumps(results["gru"]), flush=True)

    deployed = models["bptt", 0]
    net = read.load(nir_export.to_nir(deployed, cfg0.data.duration_us / cfg0.data.n_bins * 1e-6, cfg0.data.n_bins))
    x = input_spikes(net, data.test.frames)
    gold = golden_spikes(deployed, data.test.frames)
    t0 = time.perf_counter()
    side = lava.simulate(net, x, workers=2, progress=False)
    side_s = time.perf_counter() - t0
    n_one = 100
    t0 = time.perf_counter()
    one = lava.simulate(net, x[:n_one], workers=2, progress=False, one_per_sample=True)
    one_s = time.perf_counter() - t0
    same = all(np.array_equal(g, side.spikes[k][:, :g.shape[1]]) for g, k in zip(gold, net.populations)) and \
        all(np.array_equal(g[:n_one], one.spikes[k][:, :g.shape[1]]) for g, k in zip(gold, net.populations))

    bptt = results["bptt"]
    results.update({
        "deployed_accuracy": bptt["accuracy"],
        "float_ceiling_accuracy": float(np.mean([g["test_accuracy"] for g in results["gru"]])),
        "quantisation_gap_pt": round(100 * (bptt["float_qat_accuracy"] - bptt["accuracy"]), 2),
        "test_samples": int(len(data.test.labels)), "train_samples": int(len(data.train.labels)),
        "val_samples": int(len(data.val.labels)),
        "steps_per_sample": int(x.shape[1]),
        "lava_samples_per_s": round(len(x) / side_s, 2), "lava_test_split_s": round(side_s, 1),
        "lava_one_per_sample_samples_per_s": round(n_one / one_s, 2), "lava_one_per_sample_samples": n_one,
        "lava_speedup": round((len(x) / side_s) / (n_one / one_s), 1),
        "lava_identical_to_golden": bool(same),
    })
    results["ceiling_gap_pt"] = round(100 * (results["float_ceiling_accuracy"] - results["deployed_accuracy"]), 2)
    harness.write_json(OUT.with_suffix(".json"), results, indent=1)
    write_text(results)


if __name__ == "__main__":
    main()
