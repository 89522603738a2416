"""The rules every configuration obeys: each key's allowed values, named in the one-line error that refuses it.

``pipeline/config.py`` defines the keys and their defaults; this module says what each may be. The chip's bounds
come from ``hardware/chip/loihi2.py`` (the one place for Loihi 2's limits).
"""
from __future__ import annotations

import re
from dataclasses import fields

from hardware.chip.loihi2 import Limits, Resources
from hardware.graph.discretise import PRESETS
from hardware.graph.read import MAX_STEPS as MAX_INPUT_STEPS
from pipeline.config import (
    ARCHS,
    DISTILL_METHODS,
    SELECT_METHODS,
    TRAIN_METHODS,
    ConfigError,
    ModelConfig,
    RunConfig,
)

CHIP = Limits()
MAX_STEPS = CHIP.max_steps
CHIP_NEURONS = Resources().cores_per_chip * Resources().neurons_per_core
VERIFY_TARGETS = ("lava", "reference")

def _data(cfg: RunConfig) -> list[tuple]:
    d = cfg.data
    return [
        (1 <= d.max_bins <= MAX_STEPS, "data.max_bins", d.max_bins, f"1..{MAX_STEPS} (Loihi 2's configured bound on "
                                                                      "time steps, hardware/chip/loihi2.py)"),
        (0 <= d.n_bins <= d.max_bins, "data.n_bins", d.n_bins, f"1..data.max_bins ({d.max_bins}), or 0 for "
                                                                    "the dataset's default"),
        (1 <= d.channels <= 700, "data.channels", d.channels, "1..700 cochlea channels"),
        (d.n_train >= 0 and d.n_test >= 0, "data.n_train/n_test", (d.n_train, d.n_test), ">= 0 (0 = default)"),
        (d.name != "digits" or d.n_train + d.n_test <= 5000, "data.n_train + data.n_test",
         d.n_train + d.n_test, "<= 5000 for the built-in digits"),
        (d.duration_us >= 0 and d.downsample >= 0 and d.denoise_us >= 0, "data.duration_us/downsample/denoise_us",
         (d.duration_us, d.downsample, d.denoise_us), ">= 0 (0 = dataset default)"),
        (d.on_error in ("fail", "skip"), "data.on_error", d.on_error, "'fail' or 'skip'"),
        (0 < d.test_fraction < 1, "data.test_fraction", d.test_fraction, "between 0 and 1"),
        (0 <= d.val_fraction < 1, "data.val_fraction", d.val_fraction, "0 (no validation split) up to below 1"),
        (0 <= d.seed < 2**32, "data.seed", d.seed, f"0..{2**32 - 1}"),
    ] + _at_most(("data.n_train", d.n_train, 10_000_000), ("data.n_test", d.n_test, 10_000_000),
                 ("data.duration_us", d.duration_us, 3_600_000_000), ("data.downsample", d.downsample, 4096))


def _model(cfg: RunConfig) -> list[tuple]:
    m = cfg.model
    return [
        (m.arch in ARCHS, "model.arch", m.arch, f"one of {ARCHS}"),
        (m.recurrent_layers in (1, 2), "model.recurrent_layers", m.recurrent_layers, "1 or 2"),
        (m.arch != "recurrent" or m.hidden >= 1, "model.hidden", m.hidden, ">= 1 for model.arch=recurrent"),
        (0 <= m.hidden <= CHIP_NEURONS, "model.hidden", m.hidden,
         f"0..{CHIP_NEURONS:,} (0 = no hidden dense layer; a Loihi 2 chip holds {CHIP_NEURONS:,} neurons)"),
        (m.arch != "conv" or m.weight_exp >= 0, "model.weight_exp", m.weight_exp,
         ">= 0 for model.arch=conv (Lava's Conv model applies no weight exponent)"),
        (0 <= m.du <= CHIP.decay_max, "model.du", m.du, f"0..{CHIP.decay_max} (12 bit)"),
        (0 <= m.dv <= CHIP.decay_max, "model.dv", m.dv, f"0..{CHIP.decay_max} (12 bit)"),
        (0 <= m.vth_hidden <= CHIP.vth_max, "model.vth_hidden", m.vth_hidden, f"0..{CHIP.vth_max} (17 bit)"),
        (0 <= m.vth_out <= CHIP.vth_max, "model.vth_out", m.vth_out, f"0..{CHIP.vth_max} (17 bit)"),
        (CHIP.weight_exp_min <= m.weight_exp <= CHIP.weight_exp_max, "model.weight_exp", m.weight_exp,
         f"{CHIP.weight_exp_min}..{CHIP.weight_exp_max}"),
        (0 <= m.delays <= CHIP.delay_max, "model.delays", m.delays,
         f"0..{CHIP.delay_max} steps (0 = none; Loihi 2 delays a spike by at most {CHIP.delay_max} steps)"),
        (m.delays == 0 or m.arch != "conv", "model.delays", m.delays,
         "0 with model.arch=conv (delays are trained on dense and recurrent networks)"),
        (m.delay_kind in ("synapse", "neuron"), "model.delay_kind", m.delay_kind, "synapse or neuron"),
    ]


def _train(cfg: RunConfig) -> list[tuple]:
    d, t = cfg.data, cfg.train
    return [
        (t.method in TRAIN_METHODS, "train.method", t.method, f"one of {TRAIN_METHODS}"),
        (t.device in ("auto", "cpu", "cuda"), "train.device", t.device, "auto, cpu or cuda"),
        (t.k >= 1 and (t.method != "sltt-k" or t.k <= (d.n_bins or d.max_bins)), "train.k", t.k,
         f"1..data.n_bins ({d.n_bins or d.max_bins}, the output steps input reaches) with train.method=sltt-k"
         if t.method == "sltt-k" else ">= 1 (used by train.method=sltt-k only)"),
        (t.epochs >= 1, "train.epochs", t.epochs, ">= 1 (0 would export and certify a network that was never "
                                              "trained)"),
        (t.batch_size >= 1 and t.lr > 0 and t.augment_shift >= 0 and t.weight_decay >= 0,
         "train.batch_size/lr/augment_shift/weight_decay",
         (t.batch_size, t.lr, t.augment_shift, t.weight_decay), "batch_size >= 1, lr > 0, augment_shift >= 0, "
         "weight_decay >= 0"),
        (t.surrogate_slope > 0, "train.surrogate_slope", t.surrogate_slope, "> 0"),
        (t.window >= 1, "train.window", t.window, ">= 1 output steps"),
        (t.eval_every >= 0 and t.eval_samples >= 0, "train.eval_every/eval_samples", (t.eval_every, t.eval_samples),
         "eval_every >= 0 (0 = never), eval_samples >= 0 (0 = all)"),
    ]


def _select(cfg: RunConfig) -> list[tuple]:
    s = cfg.select
    return [
        (s.method in SELECT_METHODS, "select.method", s.method, f"one of {SELECT_METHODS}"),
        (0 < s.ratio < 1, "select.ratio", s.ratio, "between 0 and 1 (fraction skipped)"),
        (s.warmup_epochs >= 0 and 0 <= s.anneal_from <= 1, "select.warmup_epochs/anneal_from",
         (s.warmup_epochs, s.anneal_from), "warmup_epochs >= 0, 0 <= anneal_from <= 1"),
        (0 <= s.ema < 1 and 0 <= s.mix <= 1, "select.ema/mix", (s.ema, s.mix), "0 <= ema < 1, 0 <= mix <= 1"),
        (s.sampling in ("systematic", "poisson", "replacement"), "select.sampling", s.sampling,
         "systematic, poisson or replacement"),
    ]


def _distill(cfg: RunConfig) -> list[tuple]:
    x = cfg.distill
    return [
        (x.method in DISTILL_METHODS, "distill.method", x.method, f"one of {DISTILL_METHODS}"),
        (x.ipc >= 1 and x.iterations >= 0 and x.lr > 0 and 0 < x.init_eps < 0.5, "distill.ipc/iterations/lr/init_eps",
         (x.ipc, x.iterations, x.lr, x.init_eps), "ipc >= 1, iterations >= 0, lr > 0, 0 < init_eps < 0.5"),
        (x.binarize in ("round", "sample", "expected"), "distill.binarize", x.binarize,
         "round, sample or expected"),
        (0 <= x.round_steps <= x.iterations, "distill.round_steps", x.round_steps, "0..distill.iterations"),
        (x.init in ("random", "herding"), "distill.init", x.init, "random or herding"),
        (x.pool in ("random", "trained", "mixed"), "distill.pool", x.pool, "random, trained or mixed"),
        (x.keep in ("best", "last"), "distill.keep", x.keep, "best or last"),
        (x.check_every >= 1 and x.check_steps >= 1 and x.check_lr > 0, "distill.check_every/check_steps/check_lr",
         (x.check_every, x.check_steps, x.check_lr), "check_every >= 1, check_steps >= 1, check_lr > 0"),
        (x.layers in ("hidden", "all") or re.fullmatch(r"\d+(,\d+)*", x.layers) is not None, "distill.layers",
         x.layers, "hidden, all or layer indices such as 0,2"),
        (x.sdr_k >= 0 and x.temporal >= 0 and x.freqs >= 1 and x.freq_scale > 0, "distill.sdr_k/temporal/freqs/"
         "freq_scale", (x.sdr_k, x.temporal, x.freqs, x.freq_scale), "sdr_k >= 0, temporal >= 0, freqs >= 1, "
         "freq_scale > 0"),
        (x.probes >= 1 and x.batch_real >= 0 and x.teachers >= 1 and x.teacher_epochs >= 1
         and x.teacher_samples >= 0 and x.checkpoint_every >= 1,
         "distill.probes/batch_real/teachers/teacher_epochs/teacher_samples/checkpoint_every",
         (x.probes, x.batch_real, x.teachers, x.teacher_epochs, x.teacher_samples, x.checkpoint_every),
         "each >= 1 (batch_real and teacher_samples >= 0)"),
    ]


def _verify(cfg: RunConfig) -> list[tuple]:
    v = cfg.verify
    return [
        (v.samples >= 0 and v.workers >= 1 and v.chunk >= 1, "verify.samples/workers/chunk",
         (v.samples, v.workers, v.chunk), "samples >= 0, workers >= 1, chunk >= 1"),
        (v.vectors >= 1, "verify.vectors", v.vectors, "at least 1 sample stored as test vectors"),
        (v.one_per_sample >= 0, "verify.one_per_sample", v.one_per_sample, ">= 0 (0 = all)"),
    ] + _at_most(("verify.samples", v.samples, 10_000_000), ("verify.workers", v.workers, 4096),
                 ("verify.chunk", v.chunk, 100_000), ("verify.vectors", v.vectors, 100_000),
                 ("verify.one_per_sample", v.one_per_sample, 10_000_000))


def _seeds_and_sizes(cfg: RunConfig) -> list[tuple]:
    t, s, x = cfg.train, cfg.select, cfg.distill
    checks = [(0 <= seed < 2**32, key, seed, f"0..{2**32 - 1}") for key, seed in (
        ("train.seed", t.seed), ("select.seed", s.seed), ("distill.seed", x.seed))]
    return checks + _at_most(
        ("train.epochs", t.epochs, 100_000), ("train.batch_size", t.batch_size, 1_000_000),
        ("train.eval_every", t.eval_every, 100_000), ("train.eval_samples", t.eval_samples, 10_000_000),
        ("train.k", t.k, MAX_STEPS),
        ("distill.ipc", x.ipc, 100_000), ("distill.iterations", x.iterations, 10_000_000),
        ("distill.probes", x.probes, 10_000), ("distill.freqs", x.freqs, 1_000_000),
        ("distill.teachers", x.teachers, 1000), ("distill.teacher_epochs", x.teacher_epochs, 100_000),
        ("select.warmup_epochs", s.warmup_epochs, 100_000))


def _at_most(*bounds: tuple) -> list[tuple]:
    return [(n <= limit, key, n, f"at most {limit:,}") for key, n, limit in bounds]


def _graph(cfg) -> list[tuple]:
    g = cfg.graph
    return [
        (g.source in PRESETS, "graph.source", g.source, f"one of {sorted(PRESETS)}"),
        (g.dt >= 0, "graph.dt", g.dt, "a time step > 0 in seconds (0 = the preset's or the graph's)"),
        (g.method in ("", "exp", "euler"), "graph.method", g.method, "exp or euler (empty = the preset's)"),
        (g.target in VERIFY_TARGETS, "graph.target", g.target, f"one of {VERIFY_TARGETS}"),
    ]


def _input(cfg) -> list[tuple]:
    i = cfg.input
    return [
        (not (i.file and i.dataset), "input.file/dataset", (i.file, i.dataset), "one input: a file or a dataset"),
        (0 <= i.steps <= MAX_INPUT_STEPS, "input.steps", i.steps,
         f"1..{MAX_INPUT_STEPS:,} time steps (0 = 20 for random input; more than the chip's configured "
         f"{MAX_STEPS} are simulated, with a warning)"),
        (not (i.dataset and i.steps), "input.steps", i.steps, "0 with a dataset: its framing sets the steps "
                                                              "(give input.bin_us)"),
        (0 <= i.rate <= 1, "input.rate", i.rate, "a spike probability in [0, 1]"),
        (0 <= i.seed < 2**32, "input.seed", i.seed, f"0..{2**32 - 1}"),
        (i.bin_us >= 0 and (i.dataset or not i.bin_us), "input.bin_us", i.bin_us,
         "microseconds per step > 0 with a dataset (0 = the graph's own bins or dt)"),
    ]


def _trainer_for_model(cfg: RunConfig) -> list[tuple]:
    t, m = cfg.train, cfg.model
    return [
        # measured on the spoken digits (benchmarks/results/training_summary.txt): SLTT-K with K = 2 trains the
        # recurrent net to 0.62 against BPTT's 0.90, where SLTT with traces is memory-flat and within a point
        (t.method != "sltt-k" or m.arch != "recurrent", "train.method", t.method,
         "bptt or sltt with model.arch=recurrent: SLTT-K backpropagates K steps of a recurrent network's long "
         "sequence and collapses (0.62 against BPTT's 0.90 on the spoken digits); for memory flat in T use "
         "train.method=sltt with train.traces=true"),
        (t.method == "bptt" or m.delays == 0, "train.method", t.method,
         "bptt with model.delays (the memory-flat trainers do not carry a delay line)"),
    ]


# each rule list with the sections it reads: a command's job is checked by the lists its sections hold
RULES = ((("data",), _data), (("model",), _model), (("data", "train"), _train),
         (("model", "train"), _trainer_for_model), (("select",), _select), (("distill",), _distill),
         (("verify",), _verify), (("train", "select", "distill"), _seeds_and_sizes), (("graph",), _graph),
         (("input",), _input))


def validate(cfg) -> None:
    """Reject values that no stage could run with, naming the key and the allowed range (``cfg``: a
    :class:`RunConfig`, or a command's job of ``pipeline/jobs.py``)."""
    held = {f.name for f in fields(type(cfg))}
    for ok, key, value, allowed in (check for sections, rules in RULES if held.issuperset(sections)
                                    for check in rules(cfg)):
        if not ok:
            raise ConfigError(f"config {key} = {value!r} is not allowed: expected {allowed}")
    m = getattr(cfg, "model", None)
    if m is not None and m.arch in ("conv", "auto"):
        for channels, kernel, stride in conv_layers(m):
            if channels > 4096 or kernel > 64 or stride > 64:
                raise ConfigError(f"config model.channels/kernels/strides = {m.channels!r}/{m.kernels!r}/"
                                  f"{m.strides!r} is not allowed: expected channels <= 4096, kernels and strides "
                                  "<= 64 per conv layer")


def conv_layers(m: ModelConfig) -> list[tuple[int, int, int]]:
    """(channels, kernel, stride) per conv layer from ``model.channels/kernels/strides``."""
    lists = []
    for key in ("channels", "kernels", "strides"):
        text = getattr(m, key)
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        if not values or any(v < 1 for v in values):
            raise ConfigError(f"config model.{key} = {text!r} is not allowed: expected positive whole numbers "
                              "separated by commas, one per conv layer")
        lists.append(values)
    if len({len(v) for v in lists}) != 1:
        raise ConfigError(f"config model.channels/kernels/strides = {m.channels!r}/{m.kernels!r}/{m.strides!r}: "
                          "expected one value per conv layer in each")
    return list(zip(*lists))
