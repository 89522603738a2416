"""``verify GRAPH --data NAME``: what accuracy will this graph have on Loihi 2?

The test recordings of a dataset the pipeline reads are framed for the graph's input (the same reader, framing and
cache as ``run``), binarised into input spikes, and run four ways on the same samples:

1. the float graph as its framework runs it, with the framework's reset rule (``hardware/graph/discretise.py`` PRESETS:
   subtract for sinabs, Rockpool, Spyx, snnTorch's default; zero for NIR and Norse);
2. the float graph with Loihi 2's reset to zero;
3. the integer reference on the graph as quantised (model.nir);
4. Lava fixed_pt (and lava-dl netx where model.net was written), which the verification stage holds to the
   reference spike for spike.

A graph of ours (read exactly from its integer metadata) has no float model of its own; rows 1 and 2 then come from
the same file read as any NIR graph (its continuous parameters discretised at its dt, ``read.load(exact=False)``).

Decoding: the class is the readout neuron with the most spikes over the sample's steps (lowest index on ties) for
a spiking readout, and the one with the highest voltage at any step for a non-spiking one (LI, CubaLI).

Without --data, the float graph is still run with its framework's reset when that reset subtracts, for the one
WARNING line that gives the measured difference to Loihi 2's reset to zero (in spike counts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hardware.backends import reference
from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph import read
from hardware.graph.discretise import PRESETS
from hardware.graph.ir import Network
from hardware.judge.trace import Trace
from pipeline.config import ConfigError, RunConfig
from pipeline.data import dataset, registry
from pipeline.jobs import VerifyJob

MAX_WORDS = 1 << 28        # input values a verification holds (2 GiB of int64 spikes)


@dataclass(frozen=True)
class TaskData:
    x: np.ndarray                   # (B, n_steps, inputs) binary input spikes
    labels: np.ndarray              # (B,)
    classes: tuple[str, ...]
    bins: int
    bin_us: float
    described: str
    indices: tuple[int, ...] = ()   # which recordings of the test split (as read) they are
    drawn: str = ""                 # how they were chosen
    skipped: tuple[dict, ...] = ()  # data.on_error=skip: each recording skipped, and why


def physical(net: Network) -> bool:
    """Whether the graph's dt is a time in seconds (sinabs graphs count in steps: dt = 1)."""
    return 0 < net.dt < 1


def readout_size(net: Network) -> tuple[str, int]:
    """The readout population the class is decoded from, and its neurons."""
    out = net.readout[-1] if net.readout else list(net.populations)[-1]
    return out, net.populations[out].size


def stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices of ``labels`` drawn class by class in proportion to each class's share (every class once
    ``n`` reaches the number of classes, for a balanced split), seeded; returned in ascending order.

    Each class's recordings are shuffled and placed at evenly spaced positions (k + 0.5) / n_c of the unit
    interval; the ``n`` lowest positions are taken, ties broken by a seeded order. The first n of a test split
    ordered by class would be a few classes only."""
    rng = np.random.default_rng(seed)
    position = np.empty(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        position[rng.permutation(members)] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.random(len(labels)), position))
    return np.sort(order[:n])


def load(net: Network, job: VerifyJob) -> TaskData:
    """``verify.samples`` recordings (0: all) of ``input.dataset``'s test split as input spikes for ``net``, framed
    by ``data.*``: a seeded draw stratified by class (:func:`stratified`), so that any number of them represents
    the split."""
    cfg = RunConfig(data=replace(job.data, name=job.input.dataset))    # input.dataset names it, however set
    name = cfg.data.name
    if name not in registry.DATASETS:
        raise ConfigError(f"--data {name!r}: not a dataset the pipeline reads; choose one of "
                          f"{sorted(registry.DATASETS)}")
    spec = registry.DATASETS[name]
    out, size = readout_size(net)
    if size != len(spec.classes):
        raise GraphError(f"the graph's readout {out!r} has {size} neurons, but {name} has {len(spec.classes)} "
                         "classes: decoding takes one readout neuron per class, in the dataset's class order")
    bins, width, how, duration, widened = _framing(net, cfg, spec.duration_us, job.input.bin_us)
    cfg = registry.resolve(replace(cfg, data=replace(cfg.data, n_bins=bins, duration_us=duration)))
    per_step = dataset.input_shape(cfg.data)
    if per_step != tuple(net.input_shape) and math.prod(per_step) != net.input_size:   # before reading anything
        raise GraphError(f"{name} frames to {per_step} per step ({math.prod(per_step):,} inputs); the graph's "
                         f"input is {tuple(net.input_shape)} ({net.input_size:,} inputs)")
    split = dataset.load_split(cfg.data, "test")
    idx, drawn = _draw(split.labels, job.verify.samples, job.input.seed, cfg.data.n_test)
    frames, labels = split.frames[idx], split.labels[idx]
    B, T = frames.shape[:2]
    # room for the last bin to arrive through the longest delays
    steps = net.n_steps if net.n_steps and net.n_bins == T else T + max(net.reach, 1)
    if B * steps * net.input_size > MAX_WORDS:
        raise ConfigError(f"{B} samples x {steps} steps x {net.input_size:,} inputs is more input than this "
                          f"verification holds ({MAX_WORDS:,} values): give --samples")
    x = np.zeros((B, steps, net.input_size), np.int64)
    x[:, :T] = frames.reshape(B, T, -1) > 0
    present = len(np.unique(labels))
    return TaskData(x, labels.astype(np.int64), tuple(split.classes), bins, width,
                    f"{name} test split: {B} recordings x {T} bins of {width / 1000:g} ms ({how}"
                    + (f"; the window widened to {duration / 1000:g} ms to hold whole bins" if widened else "")
                    + ")" + (f", {steps - T} empty steps after" if steps > T else "") + ", binarised; "
                    + drawn + f", {present} of its {len(split.classes)} classes present",
                    tuple(int(i) for i in idx), drawn, tuple(split.skipped))


def _framing(net: Network, cfg: RunConfig, default_us: int, bin_us: float) -> tuple[int, float, str, int, bool]:
    """Bins, bin width (us), how the width was chosen, the framed window (us) and whether it was widened to hold
    whole bins; more bins than ``data.max_bins`` are refused."""
    name, duration = cfg.data.name, cfg.data.duration_us or default_us
    if bin_us:
        width, how = bin_us, f"--bin-us {bin_us:g}"
    elif net.n_bins:                                      # ours: framed as it was trained
        width, how = (cfg.data.duration_us or net.dt * 1e6 * net.n_bins) / net.n_bins, "the graph's own bins"
        duration = round(width * net.n_bins)
    elif physical(net):
        width, how = net.dt * 1e6, f"the graph's dt ({net.dt:g} s)"
    else:
        raise ConfigError(f"the graph's dt ({net.dt:g}) counts time steps, not seconds ({net.source} convention): "
                          f"give --bin-us, the time one step stands for")
    bins = max(1, math.ceil(duration / width - 1e-6))      # whole bins of the width asked for (a millionth of a
                                                           # bin of float rounding in a dt is not one more bin)
    if bins > cfg.data.max_bins:
        raise ConfigError(f"{how} frames {duration / 1000:g} ms of {name} into {bins} bins, more than data.max_bins "
                          f"{cfg.data.max_bins} (Loihi 2's configured bound is {Limits().max_steps} steps): give a "
                          "wider --bin-us, or --set data.max_bins=N")
    widened = round(bins * width) != duration
    duration = round(bins * width)
    return bins, duration / bins, how, duration, widened


def _draw(labels: np.ndarray, samples: int, seed: int, n_test: int) -> tuple[np.ndarray, str]:
    """Which recordings of the test split are verified (``samples`` 0: all), and the words that say so."""
    total = len(labels)
    if samples and samples < total:
        return stratified(labels, samples, seed), (f"{samples:,} of the {total:,} test recordings, drawn "
                                                   f"stratified by class (seed {seed})")
    return np.arange(total), f"all {total:,} test recordings" + (
        f" ({samples:,} asked for: the test split as read holds {total:,}"
        + (f", data.n_test={n_test}" if n_test == total else "") + ")" if samples and samples > total else "")


def decode(net: Network, spikes: dict, voltage: dict, steps: int) -> tuple[np.ndarray, str]:
    """Class per sample from the readout population over the first ``steps`` steps, and how it was decoded;
    -1 where the readout does not decide: no spike (or no voltage) at all, or a tie for the most."""
    out, _ = readout_size(net)
    pop = net.populations[out]
    if pop.spiking:
        score, how = spikes[out][:, :steps].sum(axis=1), f"spike count argmax of {out!r}"
        undecided = score.max(axis=1) == 0
    else:
        v = voltage[out][:, :steps].astype(np.float64)
        if net.float_model is not None:             # per-neuron scales: decode in the graph's own units
            v = v / net.float_model.populations[out].scale
        score, how = v.max(axis=1), f"maximum voltage argmax of {out!r} (non-spiking readout)"
        undecided = np.zeros(len(score), bool)
    undecided |= (score == score.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return np.where(undecided, -1, score.argmax(axis=1)), how + "; no spike or a tie is undecided, counted wrong"


def confusion(pred: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes + 1) counts: true class by predicted class, the last column the undecided samples."""
    m = np.zeros((classes, classes + 1), np.int64)
    np.add.at(m, (labels, np.where(pred < 0, classes, pred)), 1)
    return m


@dataclass(frozen=True)
class Resets:
    """The float graph run with its framework's reset rule and with Loihi 2's (zero), on the same input."""
    framework: str                  # whose rule: a preset name, or "nir" for a graph of ours
    rule: str                       # zero | subtract | subtract-next
    net: Network | None             # the network whose float model ran (None: no float graph could be read)
    own: Trace | None
    zero: Trace | None
    why_not: str = ""


def float_resets(graph, net: Network, x: np.ndarray, zero: Trace | None, wanted: bool) -> Resets:
    """Run the float graph with its framework's reset and with reset to zero (``wanted``: always; else only when
    the two differ, for the warning). A graph of ours has no float model of its own: its file is read again as any
    NIR graph (continuous parameters discretised at its dt)."""
    framework = "nir" if net.exact else net.source
    rule = PRESETS.get(framework, {}).get("reset", "zero")
    if not wanted and rule == "zero":
        return Resets(framework, rule, None, None, None, "not run")
    flt = net
    if net.float_model is None:
        try:
            flt = read.load(graph, exact=False)
        except (GraphError, ValueError) as e:
            return Resets(framework, rule, None, None, None, f"the graph's float parameters could not be read: {e}")
        zero = None
    zero = zero if zero is not None else reference.simulate(flt, x, integer=False)
    own = zero if rule == "zero" else reference.simulate(flt, x, integer=False, reset=rule)
    return Resets(framework, rule, flt, own, zero)


def task_accuracy(net: Network, task: TaskData, resets: Resets, v) -> dict:
    """Accuracy per variant on the task's samples, how it was decoded, and the integer reference's confusion."""
    steps, labels = task.x.shape[1], task.labels
    variants, undecided, rows, decoding = {}, {}, [], ""

    def add(key: str, title: str, net_: Network, trace: Trace | None, why: str = "") -> np.ndarray | None:
        nonlocal decoding
        if trace is None or trace.samples != len(labels):
            rows.append({"variant": title, "accuracy": None, "undecided": None,
                         "note": why or "not run on every sample"})
            return None
        pred, how = decode(net_, trace.spikes, trace.voltage, steps)
        decoding = decoding or how
        variants[key] = float((pred == labels).mean())
        undecided[key] = int((pred < 0).sum())
        rows.append({"variant": title, "accuracy": variants[key], "undecided": undecided[key],
                     "note": f"{undecided[key]} of {len(labels)} undecided, counted wrong" if undecided[key] else ""})
        return pred
    rule = resets.rule.replace("-", " ")
    add("float_framework_reset", f"float graph, {resets.framework}'s reset ({rule})", resets.net, resets.own,
        resets.why_not)
    add("float_reset_zero", "float graph, Loihi 2's reset (to zero)", resets.net, resets.zero, resets.why_not)
    pred = add("reference", "integer reference (model.nir)", net, v.traces["expected"])
    for b in v.certifying:
        add(b.backend, f"{b.backend} (must equal the reference)", net, v.traces.get(b.backend))
    for b in ("lava", "netx"):
        if not any(r["variant"].startswith(b) for r in rows):
            rows.append({"variant": b, "accuracy": None, "note": "not run"})
    matrix = confusion(pred, labels, len(task.classes))
    return {"task_accuracy": variants, "undecided": undecided, "rows": rows, "samples": int(len(labels)),
            "classes_present": int(len(np.unique(labels))), "chance": 1 / len(task.classes),
            "decoding": decoding, "data": task.described, "drawn": task.drawn, "indices": list(task.indices),
            "skipped": list(task.skipped),
            "undecided_recordings": [task.indices[i] for i in np.flatnonzero(pred < 0)] if pred is not None else [],
            "classes": list(task.classes), "bins": task.bins, "bin_us": task.bin_us,
            "reset": {"framework": resets.framework, "rule": resets.rule},
            "confusion": {"of": "reference", "columns": "the predicted class, then 'undecided'",
                          "matrix": matrix.tolist()}}


def reset_warnings(resets: Resets, accuracy: dict) -> list[str]:
    """One WARNING line when the framework resets by subtraction, with the measured difference to Loihi 2's
    reset to zero: task accuracy with --data, spike counts without."""
    if resets.rule == "zero" or resets.own is None:
        return []
    head = (f"WARNING: {resets.framework} resets by subtraction ({resets.rule.replace('-', ' ')}); Loihi 2 resets "
            "to zero, which the integer model and every backend do")
    acc = accuracy.get("task_accuracy", {})
    if "float_framework_reset" in acc and "float_reset_zero" in acc:
        a, b = acc["float_framework_reset"], acc["float_reset_zero"]
        return [f"{head}: the float graph's accuracy is {a:.4f} with its own reset and {b:.4f} with Loihi 2's "
                f"({100 * (b - a):+.2f} points, measured on {accuracy['samples']} samples)"]
    own = sum(int(s.sum()) for s in resets.own.spikes.values())
    zero = sum(int(s.sum()) for s in resets.zero.spikes.values())
    change = f"{100 * (zero - own) / own:+.1f}%" if own else "from none"
    return [f"{head}: the float graph spikes {own:,} times with its own reset and {zero:,} times with Loihi 2's "
            f"({change}, measured on this input; give --data for the accuracy difference)"]
