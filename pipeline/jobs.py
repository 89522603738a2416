"""The configurations of the commands other than ``run``: frozen dataclasses set with the same ``--set
section.key=value`` syntax (``pipeline/config.py`` :func:`~pipeline.config.apply_overrides`) and checked by the
same rules (``pipeline/config_rules.py``). ``distill`` takes the run's :class:`~pipeline.config.RunConfig`.

- ``verify``: :class:`VerifyJob`: how the graph is read (``graph.*``), its input (``input.*``), the
  verification (``verify.*``, the run's section: samples (0 = 4 random ones, or the whole test split), workers,
  chunk, vectors, one_per_sample) and, for ``--data``, how the dataset is read and framed (``data.*``, the
  run's section).
- ``check``: :class:`CheckJob` (``graph.*``).
- ``recheck``: :class:`RecheckJob` (``verify.workers``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from hardware.chip.loihi2 import Limits
from pipeline.config import ConfigError, DataConfig, VerifyConfig, apply_overrides


@dataclass(frozen=True)
class GraphConfig:
    """How a graph is read and what it is run on."""
    source: str = "nir"           # whose convention a graph without our integer metadata follows: nir (exp, dt
                                  # from metadata), snntorch, sinabs, norse, rockpool, spyx
                                  # (hardware/graph/discretise.py)
    dt: float = 0.0               # time step in seconds (0 = the preset's, or the graph's metadata)
    method: str = ""              # exp | euler ("" = the preset's)
    netx: bool = False            # quantise with weight exponents 0 and 1 only, so that lava-dl netx stores
                                  # every layer (export/netx_export.py)
    target: str = "lava"          # verify: lava (float graph, integer reference, Lava fixed_pt, netx where written)
                                  # | reference (float graph against the integer reference only, no Lava)


@dataclass(frozen=True)
class InputConfig:
    """verify's input spikes: random, a file, or a dataset's test recordings."""
    file: str = ""                # .npy/.npz spikes, (T, *input) or (B, T, *input) ("" = none)
    dataset: str = ""             # a dataset's test split, framed for the graph by data.* ("" = none)
    steps: int = 0                # random: steps (0 = 20); a file's input is padded to this
    rate: float = 0.2             # random: spike probability per input and step
    seed: int = 0                 # random input's seed, or the dataset's draw of verify.samples recordings
    bin_us: float = 0.0           # dataset: microseconds per step (0 = the graph's own bins, or its dt)


def _verify_data() -> DataConfig:
    # verify frames a dataset for a graph trained elsewhere: its bound on bins is the chip's, not the training
    # default (a run's data.max_bins = 64 keeps training memory down)
    return DataConfig(max_bins=Limits().max_steps)


@dataclass(frozen=True)
class VerifyJob:
    graph: GraphConfig = field(default_factory=GraphConfig)
    input: InputConfig = field(default_factory=InputConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    data: DataConfig = field(default_factory=_verify_data)


@dataclass(frozen=True)
class CheckJob:
    graph: GraphConfig = field(default_factory=GraphConfig)


@dataclass(frozen=True)
class RecheckJob:
    verify: VerifyConfig = field(default_factory=VerifyConfig)


# verify's options and the keys they set: ``--seed 3`` is ``--set input.seed=3``
VERIFY_FLAGS = {"source": "graph.source", "dt": "graph.dt", "method": "graph.method", "netx": "graph.netx",
                "target": "graph.target", "input": "input.file", "data": "input.dataset", "steps": "input.steps",
                "rate": "input.rate", "seed": "input.seed", "bin_us": "input.bin_us", "root": "data.root",
                "samples": "verify.samples", "workers": "verify.workers", "vectors": "verify.vectors"}
MAX_SAMPLES = 100_000


def verify_job(sets: tuple[str, ...] | list[str] = (), **flags) -> VerifyJob:
    """The job ``verify``'s options and ``--set`` items describe (options win, as in ``run``); an option that
    would be ignored or misread is refused in one line that names it."""
    flags = {k: v for k, v in flags.items() if v is not None and v is not False}
    unknown = sorted(set(flags) - set(VERIFY_FLAGS))
    if unknown:
        raise TypeError(f"verify_job: no option {unknown[0]!r}")
    _check_combinations(flags, tuple(sets))
    _check_ranges(flags)
    items = list(sets) + [f"{VERIFY_FLAGS[k]}={v}" for k, v in flags.items()]
    if "data" in flags:
        items.append(f"data.name={flags['data']}")
    return apply_overrides(VerifyJob(), items)


def _check_combinations(f: dict, sets: tuple[str, ...]) -> None:
    data = f.get("data")
    if data and "input" in f:
        raise ConfigError("--input and --data both given: verify runs one input, give one")
    if data and "steps" in f:
        raise ConfigError("--steps with --data: the data's framing sets the steps (give --bin-us)")
    if (data or "input" in f) and "rate" in f:
        raise ConfigError(f"--rate with {'--data' if data else '--input'}: "
                          f"{'the recordings' if data else 'the file'} is the input; --rate sets random input only")
    data_sets = [s for s in sets if s.strip().startswith("data.")]
    if not data:
        given = [o for o, v in (("--bin-us", "bin_us" in f), ("--root", "root" in f), ("--set", data_sets)) if v]
        if given:
            raise ConfigError(f"{given[0]} without --data: "
                              + (f"{data_sets[0]} " if given[0] == "--set" else "it ")
                              + "sets how a dataset is read (give --data NAME)")
    for item in data_sets:
        key = item.partition("=")[0].strip()
        if key in ("data.name", "data.root"):
            option = "--data NAME" if key == "data.name" else "--root DIR"
            raise ConfigError(f"--set {item}: give {option} instead (--data {data} names the dataset)")


def _check_ranges(f: dict) -> None:
    """Each option's range, named by the option (the keys' own ranges are checked after, by key)."""
    data = bool(f.get("data"))
    if "samples" in f and not 1 <= f["samples"] <= MAX_SAMPLES:
        raise ConfigError(f"--samples {f['samples']}: give 1..{MAX_SAMPLES:,} " + (
            "test recordings (leave --samples out for the whole test split)" if data else "random input samples"))
    # imported here: the graph reader imports nir, which --help need not wait for
    from hardware.graph.read import MAX_STEPS
    if "steps" in f and not 1 <= f["steps"] <= MAX_STEPS:
        raise ConfigError(f"--steps {f['steps']}: give 1..{MAX_STEPS:,} time steps (Loihi 2's configured bound is "
                          f"{Limits().max_steps}; more are simulated, with a warning)")
    if "rate" in f and not (math.isfinite(f["rate"]) and 0 <= f["rate"] <= 1):
        raise ConfigError(f"--rate {f['rate']:g} is not a spike probability in [0, 1]")
    if "dt" in f and not (math.isfinite(f["dt"]) and f["dt"] > 0):
        raise ConfigError(f"--dt {f['dt']:g} is not a time step: give a positive, finite number of seconds")
    if "bin_us" in f and not (math.isfinite(f["bin_us"]) and f["bin_us"] > 0):
        raise ConfigError(f"--bin-us {f['bin_us']:g}: give a positive bin width in microseconds")
    if "workers" in f and f["workers"] < 1:
        raise ConfigError(f"--workers {f['workers']}: give at least 1")
    if "vectors" in f and f["vectors"] < 1:
        raise ConfigError(f"--vectors {f['vectors']}: store at least 1 sample")
    if "seed" in f and not 0 <= f["seed"] < 2**32:
        raise ConfigError(f"--seed {f['seed']}: give 0..{2**32 - 1}")
