"""Run configuration: one frozen dataclass per stage, composed into :class:`RunConfig`.

Overrides come as ``section.field=value`` strings (``--set train.epochs=3``); unknown keys and values that do not
parse as the field's type are rejected with a :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any


class ConfigError(ValueError):
    """A configuration key or value the user gave is not acceptable."""



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
                                  # bound on steps per inference is 256, hardware/chip/loihi2.py)
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
    delays: int = 0               # dense/recurrent: trained synaptic delays of 0..delays steps on every feed-forward
                                  # projection (0 = none; Loihi 2 delays a spike by at most 62; models/delays.py)
    delay_kind: str = "synapse"   # synapse: one delay per synapse; neuron: one per presynaptic neuron (a NIR Delay)


@dataclass(frozen=True)
class TrainConfig:
    method: str = "bptt"          # bptt | sltt | sltt-k (online, memory flat in T; pipeline/train/sltt.py)
    k: int = 2                    # SLTT-K: output steps backpropagated per batch (of the data.n_bins input reaches)
    traces: bool = True           # SLTT, SLTT-K: exact through time inside a window, eligibility traces across
                                  # windows (recurrent: traces of input and recurrent spikes); false = SLTT as
                                  # published, every temporal route dropped (pipeline/train/traces.py). Chosen on
                                  # validation (benchmarks/results/training_summary.txt)
    window: int = 4               # conv/dense SLTT: output steps per backward call; with traces, the span of exact
                                  # backpropagation through time (memory grows with it, not with T); 4 and 8 tied
                                  # on validation, 4 needs less memory
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
    mix: float = 0.5              # q = (1 - mix) * S / sum(S) + mix / N: a floor for low-score examples; 0.5
                                  # over 0.2 on the Fashion validation curves (benchmarks/results/choose_sadp.txt)
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
    init: str = "herding"         # the real frames it starts from: herding (the herding coreset on the features of
                                  # one teacher trained on real frames, pipeline/distill/coreset.py) | random (per
                                  # class); chosen on validation (benchmarks/results/choose_init.txt)
    init_eps: float = 0.1         # start: logit of the real starting frames clipped to [eps, 1 - eps]
    peq: bool = False             # True: the probes see PEQ-1 draws of the probabilities (straight-through), as
                                  # the paper does; False: the probabilities (the continuous relaxation), which
                                  # measured better once rounded (IPC 1, conv: 0.594 against 0.519 with PEQ)
    round_steps: int = 0          # last steps in which the probes see the rounded frames p > 1/2 (straight-through
                                  # gradient to p): the matching then optimises the set that is stored
    binarize: str = "round"       # the stored set: round (p > 1/2, deterministic) | sample (one PEQ-1 draw) |
                                  # expected (each sample's round(sum p) events at its most probable pixel-steps)
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
    keep: str = "best"            # best: the stored set is judged on the validation split at the start and every
                                  # check_every steps (a fresh SNN trained on it, pipeline/distill/keep.py) and the
                                  # best is kept, the start on a tie | last: the last step's set, unjudged
    check_every: int = 100        # steps between those checks (and one at the last step)
    check_steps: int = 200        # optimiser steps of the SNN each check trains (batch min(50, set size))
    check_lr: float = 3e-3        # its learning rate (the distillation benchmark's, chosen on validation)
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
    "distill.checkpoint_every": 2, "distill.probes": 2, "distill.check_steps": 10,
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


def override(cfg, key: str, value: Any):
    """Return ``cfg`` (a :class:`RunConfig`, or a command's job of ``pipeline/jobs.py``) with ``section.field``
    set to ``value`` (a string is parsed to the field's type)."""
    section, _, name = key.partition(".")
    sections = {f.name: f for f in fields(type(cfg))}
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


PATH_KEYS = ("data.root", "data.cache", "data.distilled", "input.file")


def expand_home(path: str) -> str:
    """``~`` and ``~user`` expanded as a shell would: the shell leaves them alone in ``--out=~/x`` and
    ``--set data.root=~/x``, and a folder literally named ``~`` is never what was meant."""
    return os.path.expanduser(path) if path.startswith("~") else path


def apply_overrides(cfg, items: list[str]):
    """Apply ``key=value`` strings in order to ``cfg`` (a :class:`RunConfig` or a job), then check the result."""
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        cfg = override(cfg, key.strip(), value.strip())
    from pipeline.config_rules import (
        validate,  # the rules read this module's types: imported when used
    )
    validate(cfg)
    return cfg
