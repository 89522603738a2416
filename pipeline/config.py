"""Run configuration: one frozen dataclass per stage, composed into :class:`RunConfig`.

Overrides come as ``section.field=value`` strings (``--set train.epochs=3``); unknown keys and values that do not
parse as the field's type are rejected with a :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any


class ConfigError(ValueError):
    """A configuration key or value the user gave is not acceptable."""


MAX_STEPS = 256                 # hardware/loihi2.py Limits.max_steps: the configured bound on time steps
CHIP_NEURONS = 128 * 8192       # hardware/loihi2.py Resources: neurons on one Loihi 2 chip


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"          # digits | fashion (simulated saccades) | nmnist | dvsgesture | cifar10dvs |
                                  # spoken_digits (synthesised speech through a cochlea model) | shd
    root: str = ""                # dataset folder as its publisher distributes it (fashion: IDX folder)
    cache: str = ""               # simulated recordings and framed tensors ("" = ~/.cache/nmpipe)
    seed: int = 0                 # digits split, CIFAR10-DVS split, sample caps, simulation
    n_train: int = 0              # cap on training samples (0 = dataset default: digits 4000, else all)
    n_test: int = 0               # cap on test samples (0 = dataset default: digits 1000, else all)
    val_fraction: float = 0.1     # held out of the training split per class for validation (per-epoch curve,
                                  # choosing hyperparameters); the test split is used once, at the end
    n_bins: int = 0               # T: time bins per sample (0 = dataset default: 8 for vision, 50 for audio)
    max_bins: int = 64            # configured bound on T (Loihi runs are time-step bounded; Loihi 2's configured
                                  # bound on steps per inference is 256, hardware/loihi2.py)
    channels: int = 64            # spoken_digits: cochlea channels (SHD has 700)
    duration_us: int = 0          # window framed into T bins from each sample's start (0 = dataset default)
    downsample: int = 0           # spatial pooling factor (0 = dataset default: 4 for 128 x 128 sensors)
    denoise_us: int = 0           # tonic's denoise filter time (0 = off)
    on_error: str = "fail"        # fail | skip: a bad file stops the run, or is skipped and listed
    test_fraction: float = 0.1    # CIFAR10-DVS has no official split: seeded per-class test fraction
    distilled: str = ""           # folder written by `pipeline distill`: train on it, test on the real test split


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "auto"            # conv: conv layers (channels/kernels/strides) -> dense; dense: inputs -> hidden ->
                                  # classes; recurrent: inputs -> recurrent CUBA LIF layer(s) -> classes; auto:
                                  # conv for a camera's (2, H, W) frames, recurrent for a 1-D sensor's (T, C)
    channels: str = "16,32"       # conv: output channels per conv layer
    kernels: str = "5,3"          # conv: square kernel per conv layer (padding kernel // 2)
    strides: str = "2,2"          # conv: stride per conv layer (strided convolutions instead of pooling)
    hidden: int = 256             # neurons of the dense hidden layer before the readout (0 = none), or of each
                                  # recurrent layer
    recurrent_layers: int = 1     # recurrent: how many recurrent hidden layers (1 or 2)
    du: int = 2048                # current decay, 12-bit (Lava adds 1: 4095 clears u each step)
    dv: int = 2048                # voltage decay, 12-bit (0 = no leak); fast decays keep the bins apart, which
                                  # the conv model needs (one-seed trials, 30 epochs: dv 256 0.957, dv 2048 0.970)
    vth_hidden: int = 256         # threshold mantissa, 17-bit; spike when v > vth << 6
    vth_out: int = 256
    weight_exp: int = 0           # shared weight exponent per layer, synaptic input = (sum q s) * 2**exp


@dataclass(frozen=True)
class TrainConfig:
    method: str = "bptt"          # bptt | sltt | sltt-k (online, memory flat in T; pipeline/sltt.py)
    k: int = 2                    # SLTT-K: output steps backpropagated per batch (of the data.n_bins input reaches)
    device: str = "auto"          # auto (cuda when available, else cpu) | cpu | cuda
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    surrogate_slope: float = 5.0  # snntorch fast-sigmoid slope, on (v - theta) / theta
    augment_shift: int = 2        # random shift of training frames: camera, up to this many pixels in x and y;
                                  # 1-D sensor (audio), up to this many channels
    weight_decay: float = 1e-2    # AdamW decoupled weight decay
    eval_every: int = 1           # float validation accuracy every this many epochs and after the last (0 = never):
                                  # the learning curve; its time is reported apart from the epochs' training time
    eval_samples: int = 1000      # validation samples evaluated each time (a fixed seeded subset; 0 = all)


@dataclass(frozen=True)
class SelectConfig:
    """Which training examples each epoch uses (SADP and baselines; see pipeline/select/)."""
    method: str = "full"          # full | static_random | dynamic_random | sadp | el2n | loss | infobatch
                                  # | infobatch_matched (InfoBatch dropping ratio x N, the work of the others)
    ratio: float = 0.5            # fraction of examples skipped in a pruned epoch
    warmup_epochs: int = 1        # first epochs on full data (they also give every example a score)
    anneal_from: float = 0.95     # epochs from this fraction of training on use full data again
    ema: float = 0.5              # score smoothing: s = ema * s_old + (1 - ema) * s_new, for examples seen
    mix: float = 0.2              # q = (1 - mix) * S / sum(S) + mix / N: a floor for low-score examples
    sampling: str = "systematic"  # systematic (fixed size) | poisson | replacement
    keep_steps: bool = False      # True: a pruned epoch keeps full data's number of optimiser steps, on batches
                                  # of train.batch_size x (1 - ratio); False: full batches, fewer steps
    seed: int = 0


@dataclass(frozen=True)
class DistillConfig:
    """``pipeline distill``: a few synthetic event-frame samples per class (PACE and baselines; pipeline/distill/)."""
    method: str = "pace"          # pace | cf | dm (optimised) | random | herding | kcenter (real subsets)
    ipc: int = 10                 # samples per class
    iterations: int = 300         # optimisation steps on the synthetic frames (cosine learning-rate schedule)
    lr: float = 0.3               # Adam step on the logits of the synthetic event probabilities (IPC 1, conv,
                                  # one seed: 0.1 -> 0.676, 0.3 -> 0.667 continuous; rounded 0.594, 0.651)
    init_eps: float = 0.1         # start: logit of the real starting frames clipped to [eps, 1 - eps]
    peq: bool = False             # True: the probes see PEQ-1 draws of the probabilities (straight-through), as
                                  # the paper does; False: the probabilities (the continuous relaxation), which
                                  # measured better once rounded (IPC 1, conv: 0.594 against 0.519 with PEQ)
    round_steps: int = 0          # last steps in which the probes see the rounded frames p > 1/2 (straight-through
                                  # gradient to p): the matching then optimises the set that is stored
    binarize: str = "round"       # the stored set: round (p > 1/2, deterministic) | sample (one PEQ-1 draw)
    sdr_k: float = 0.5            # SDR: features = spikes + k * (v / theta - spikes); 0 = spikes only
    temporal: float = 1.0         # weight of the temporal DFT term; 0 = spatial term only
    layers: str = "hidden"        # layers whose features are matched: hidden | all (with the readout) | 0,1,...
    freqs: int = 256              # random frequencies of the characteristic function, per probe and layer
    freq_scale: float = 1.0       # frequency std, in units of 1 / (rms distance of real features to their mean)
    pool: str = "random"          # probe networks: random (fresh initialisations) | trained (teachers blended
                                  # with their start) | mixed (half each)
    probes: int = 32              # probe networks; the real class statistics of each are computed once
    batch_real: int = 100         # real samples per class for those statistics (0 = all; IPC 1, conv: 16
                                  # probes x all 400 gave 0.667 / 0.651 rounded in 575 s, 32 x 100 0.702 / 0.650
                                  # in 270 s)
    teachers: int = 3             # pool trained / mixed: teacher SNNs trained on real frames
    teacher_epochs: int = 4
    teacher_samples: int = 0      # real training samples per teacher (0 = all)
    checkpoint_every: int = 20    # steps between resumable checkpoints
    seed: int = 0


@dataclass(frozen=True)
class VerifyConfig:
    samples: int = 0              # test samples checked on each backend (0 = the whole test split)
    workers: int = 2              # parallel Lava simulations, each one network for many samples
    chunk: int = 250              # samples per Lava network build
    vectors: int = 32             # samples stored as test vectors (vectors.h5) for the hand-off and recheck
    one_per_sample: int = 200     # samples run on a Lava backend that must build one network per sample (netx
                                  # on a recurrent network, ~1 s each): the first this many (0 = all); the
                                  # certificate names the rest as not compared


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        cfg = cls()
        for section, values in d.items():
            for key, value in values.items():
                cfg = override(cfg, f"{section}.{key}", value)
        return cfg


SELECT_METHODS = ("full", "static_random", "dynamic_random", "sadp", "el2n", "loss", "infobatch",
                  "infobatch_matched")
TRAIN_METHODS = ("bptt", "sltt", "sltt-k")
# run --target: the backends each target runs (hardware/backends BACKENDS: reference, lava, onnx, netx)
TARGETS = {"reference": ("reference",), "lava": ("reference", "lava"), "onnx": ("reference", "onnx"),
           "netx": ("reference", "netx"), "all": ("reference", "lava", "onnx", "netx")}
ARCHS = ("auto", "conv", "dense", "recurrent")
DISTILL_METHODS = ("pace", "cf", "dm", "random", "herding", "kcenter")

QUICK = {
    "data.n_train": 200, "data.n_test": 40, "data.n_bins": 8,
    "model.hidden": 32, "train.epochs": 1, "verify.chunk": 20,
    "model.dv": 256, "model.vth_out": 64,   # 1-3 epochs on 30-200 samples left the readout silent with the
                                            # default fast leak (2048) and threshold 256 (measured)
    "distill.iterations": 4, "distill.teachers": 1, "distill.teacher_epochs": 1, "distill.batch_real": 8,
    "distill.checkpoint_every": 2, "distill.probes": 2,
}


def _parse(text: Any, typ: type, key: str) -> Any:
    value = _parse_type(text, typ, key)
    if typ is float and not math.isfinite(value):
        raise ConfigError(f"config key {key!r}: expected a finite number, got {text!r}")
    return value


def _parse_type(text: Any, typ: type, key: str) -> Any:
    if not isinstance(text, str):
        if typ is float and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        if isinstance(text, typ) and not (typ is int and isinstance(text, bool)):
            return text
        raise ConfigError(f"config key {key!r}: expected {typ.__name__}, got {text!r}")
    try:
        if typ is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return typ(text)
    except ValueError:
        raise ConfigError(f"config key {key!r}: expected {typ.__name__}, got {text!r}") from None


def override(cfg: RunConfig, key: str, value: Any) -> RunConfig:
    """Return ``cfg`` with ``section.field`` set to ``value`` (a string is parsed to the field's type)."""
    section, _, name = key.partition(".")
    sections = {f.name: f for f in fields(RunConfig)}
    if section not in sections or not name:
        raise ConfigError(f"unknown config key {key!r}; sections are {sorted(sections)}")
    sub = getattr(cfg, section)
    types = {f.name: f.type for f in fields(sub)}
    if name not in types:
        raise ConfigError(f"unknown config key {key!r}; {section} has {sorted(types)}")
    typ = {"int": int, "float": float, "str": str, "bool": bool}[types[name]]
    value = _parse(value, typ, key)
    if key in PATH_KEYS:
        value = expand_home(value)
    return replace(cfg, **{section: replace(sub, **{name: value})})


PATH_KEYS = ("data.root", "data.cache", "data.distilled")


def expand_home(path: str) -> str:
    """``~`` and ``~user`` expanded as a shell would: the shell leaves them alone in ``--out=~/x`` and
    ``--set data.root=~/x``, and a folder literally named ``~`` is never what was meant."""
    return os.path.expanduser(path) if path.startswith("~") else path


def apply_overrides(cfg: RunConfig, items: list[str]) -> RunConfig:
    """Apply ``key=value`` strings in order, then check the result."""
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        cfg = override(cfg, key.strip(), value.strip())
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Reject values that no stage could run with, naming the key and the allowed range."""
    d, m, t, v, s, x = cfg.data, cfg.model, cfg.train, cfg.verify, cfg.select, cfg.distill
    checks = [
        (1 <= d.max_bins <= MAX_STEPS, "data.max_bins", d.max_bins, f"1..{MAX_STEPS} (Loihi 2's configured bound on "
                                                                  "time steps, hardware/loihi2.py)"),
        (0 <= d.n_bins <= d.max_bins, "data.n_bins", d.n_bins, f"1..data.max_bins ({d.max_bins}), or 0 for the "
                                                                "dataset's default"),
        (1 <= d.channels <= 700, "data.channels", d.channels, "1..700 cochlea channels"),
        (d.n_train >= 0 and d.n_test >= 0, "data.n_train/n_test", (d.n_train, d.n_test), ">= 0 (0 = default)"),
        (d.name != "digits" or d.n_train + d.n_test <= 5000, "data.n_train + data.n_test",
         d.n_train + d.n_test, "<= 5000 for the built-in digits"),
        (d.duration_us >= 0 and d.downsample >= 0 and d.denoise_us >= 0, "data.duration_us/downsample/denoise_us",
         (d.duration_us, d.downsample, d.denoise_us), ">= 0 (0 = dataset default)"),
        (d.on_error in ("fail", "skip"), "data.on_error", d.on_error, "'fail' or 'skip'"),
        (0 < d.test_fraction < 1, "data.test_fraction", d.test_fraction, "between 0 and 1"),
        (0 <= d.val_fraction < 1, "data.val_fraction", d.val_fraction, "0 (no validation split) up to below 1"),
        (m.arch in ARCHS, "model.arch", m.arch, f"one of {ARCHS}"),
        (m.recurrent_layers in (1, 2), "model.recurrent_layers", m.recurrent_layers, "1 or 2"),
        (m.arch != "recurrent" or m.hidden >= 1, "model.hidden", m.hidden, ">= 1 for model.arch=recurrent"),
        (0 <= m.hidden <= CHIP_NEURONS, "model.hidden", m.hidden,
         f"0..{CHIP_NEURONS:,} (0 = no hidden dense layer; a Loihi 2 chip holds {CHIP_NEURONS:,} neurons)"),
        (m.arch != "conv" or m.weight_exp >= 0, "model.weight_exp", m.weight_exp,
         ">= 0 for model.arch=conv (Lava's Conv model applies no weight exponent)"),
        (0 <= m.du <= 4095, "model.du", m.du, "0..4095 (12 bit)"),
        (0 <= m.dv <= 4095, "model.dv", m.dv, "0..4095 (12 bit)"),
        (0 <= m.vth_hidden < 2**17, "model.vth_hidden", m.vth_hidden, "0..131071 (17 bit)"),
        (0 <= m.vth_out < 2**17, "model.vth_out", m.vth_out, "0..131071 (17 bit)"),
        (-8 <= m.weight_exp <= 7, "model.weight_exp", m.weight_exp, "-8..7"),
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
        (t.eval_every >= 0 and t.eval_samples >= 0, "train.eval_every/eval_samples", (t.eval_every, t.eval_samples),
         "eval_every >= 0 (0 = never), eval_samples >= 0 (0 = all)"),
        (s.method in SELECT_METHODS, "select.method", s.method, f"one of {SELECT_METHODS}"),
        (0 < s.ratio < 1, "select.ratio", s.ratio, "between 0 and 1 (fraction skipped)"),
        (s.warmup_epochs >= 0 and 0 <= s.anneal_from <= 1, "select.warmup_epochs/anneal_from",
         (s.warmup_epochs, s.anneal_from), "warmup_epochs >= 0, 0 <= anneal_from <= 1"),
        (0 <= s.ema < 1 and 0 <= s.mix <= 1, "select.ema/mix", (s.ema, s.mix), "0 <= ema < 1, 0 <= mix <= 1"),
        (s.sampling in ("systematic", "poisson", "replacement"), "select.sampling", s.sampling,
         "systematic, poisson or replacement"),
        (x.method in DISTILL_METHODS, "distill.method", x.method, f"one of {DISTILL_METHODS}"),
        (x.ipc >= 1 and x.iterations >= 0 and x.lr > 0 and 0 < x.init_eps < 0.5, "distill.ipc/iterations/lr/init_eps",
         (x.ipc, x.iterations, x.lr, x.init_eps), "ipc >= 1, iterations >= 0, lr > 0, 0 < init_eps < 0.5"),
        (x.binarize in ("round", "sample"), "distill.binarize", x.binarize, "round or sample"),
        (0 <= x.round_steps <= x.iterations, "distill.round_steps", x.round_steps, "0..distill.iterations"),
        (x.pool in ("random", "trained", "mixed"), "distill.pool", x.pool, "random, trained or mixed"),
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
        (v.samples >= 0 and v.workers >= 1 and v.chunk >= 1, "verify.samples/workers/chunk",
         (v.samples, v.workers, v.chunk), "samples >= 0, workers >= 1, chunk >= 1"),
        (v.vectors >= 1, "verify.vectors", v.vectors, "at least 1 sample stored as test vectors"),
        (v.one_per_sample >= 0, "verify.one_per_sample", v.one_per_sample, ">= 0 (0 = all)"),
    ]
    for key, seed in (("data.seed", d.seed), ("train.seed", t.seed), ("select.seed", s.seed),
                      ("distill.seed", x.seed)):
        checks.append((0 <= seed < 2**32, key, seed, f"0..{2**32 - 1}"))
    checks += [(n <= limit, key, n, f"at most {limit:,}") for key, n, limit in (
        ("data.n_train", d.n_train, 10_000_000), ("data.n_test", d.n_test, 10_000_000),
        ("train.epochs", t.epochs, 100_000), ("train.batch_size", t.batch_size, 1_000_000),
        ("train.eval_every", t.eval_every, 100_000), ("train.eval_samples", t.eval_samples, 10_000_000),
        ("train.k", t.k, MAX_STEPS), ("verify.samples", v.samples, 10_000_000), ("verify.workers", v.workers, 4096),
        ("verify.chunk", v.chunk, 100_000), ("verify.vectors", v.vectors, 100_000),
        ("verify.one_per_sample", v.one_per_sample, 10_000_000),
        ("distill.ipc", x.ipc, 100_000), ("distill.iterations", x.iterations, 10_000_000),
        ("distill.probes", x.probes, 10_000), ("distill.freqs", x.freqs, 1_000_000),
        ("distill.teachers", x.teachers, 1000), ("distill.teacher_epochs", x.teacher_epochs, 100_000),
        ("data.duration_us", d.duration_us, 3_600_000_000), ("data.downsample", d.downsample, 4096),
        ("select.warmup_epochs", s.warmup_epochs, 100_000))]
    for ok, key, value, allowed in checks:
        if not ok:
            raise ConfigError(f"config {key} = {value!r} is not allowed: expected {allowed}")
    if m.arch in ("conv", "auto"):
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
