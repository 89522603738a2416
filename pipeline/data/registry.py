"""The datasets the pipeline reads: sensor, classes, framing defaults, how to list a split and read a file."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.config import ConfigError, DataConfig, RunConfig
from pipeline.config_rules import validate
from pipeline.data import digits, gesture, speech, spoken
from pipeline.data.formats import aedat2, aedat4, aedat31, nmnist, shd
from pipeline.data.layout import (
    DataError,
    Listing,
    Recording,
    Sample,
    list_class_folders,
    require_dir,
)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_NMNIST_SPLITS = {"train": "Train", "test": "Test"}


@dataclass(frozen=True)
class DatasetSpec:
    sensor: Callable[[DataConfig], tuple[int, ...]]   # (H, W) of a camera, (C,) channels of a cochlea
    classes: tuple[str, ...]
    downsample: int                          # default spatial pooling factor (DVS128's 128 x 128 -> 32 x 32)
    duration_us: int                         # default framed window from each sample's first event
    list_split: Callable[[DataConfig, str], Listing]
    read: Callable[[Path], np.ndarray | shd.Recordings]    # a recording's events, or a file of many (SHD)
    n_train: int = 0                         # default sample caps (0 = every sample in the split)
    n_test: int = 0
    simulated: bool = False                  # splits drawn by us from a pool (a small cap may miss a class)
    max_bytes: int = 16 << 20                # a file larger than this is not one of the dataset's recordings
    n_bins: int = 8                          # default time bins per sample


def cache_dir(cfg: DataConfig) -> Path:
    return Path(cfg.cache) if cfg.cache else digits.default_cache()


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise DataError(f"data.name={cfg.name} reads a folder: set data.root=PATH")
    root = Path(cfg.root)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: a file, not a folder: data.root (--root) names the folder that holds the "
                        f"{cfg.name} dataset as its publisher distributes it")
    return root


def _nmnist_layout(root: Path, split: str) -> Listing:
    classes = {str(d): d for d in range(10)}
    return Listing(list_class_folders(root / _NMNIST_SPLITS[split], "*.bin", classes,
                                      "N-MNIST layout Train/<digit>/*.bin and Test/<digit>/*.bin"))


def _cifar10dvs(cfg: DataConfig, split: str) -> Listing:
    """No official split: per class, a permutation seeded by data.seed puts data.test_fraction in test."""
    root, classes = _root(cfg), {c: k for k, c in enumerate(CIFAR10_CLASSES)}
    recs = [r for r in list_class_folders(root, "*.aedat*", classes, "CIFAR10-DVS layout <class>/*.aedat[4]")
            if r.path.suffix in (".aedat", ".aedat4")]
    chosen = []
    for label in range(len(CIFAR10_CLASSES)):
        mine = [r for r in recs if r.samples[0].label == label]
        perm = np.random.default_rng([cfg.seed, label]).permutation(len(mine))
        n_test = int(round(cfg.test_fraction * len(mine)))
        keep = perm[:n_test] if split == "test" else perm[n_test:]
        chosen += [mine[i] for i in sorted(keep)]
    return Listing(chosen)


def _read_cifar(path: Path) -> np.ndarray:
    return aedat4.read_polarity(path) if path.suffix == ".aedat4" else aedat2.read_dvs128(path)


def _read_gesture(path: Path) -> np.ndarray:
    return gesture.read_tonic_npy(path) if path.suffix == ".npy" else aedat31.read_polarity(path)


def _shd_layout(root: Path, split: str) -> Listing:
    """An SHD-format file per split (shd_train.h5, shd_test.h5): one recording per index, its label from the file
    (one of SHD's 20 classes)."""
    path = require_dir(root, "SHD's shd_train.h5 and shd_test.h5") / spoken.FILES[split]
    labels, speakers = shd.labels(path, len(speech.CLASSES))
    return Listing([Recording(path, tuple(Sample(int(c), index=i, group=int(g))
                                          for i, (c, g) in enumerate(zip(labels, speakers))))])


def _read_shd(path: Path) -> shd.Recordings:
    """Every recording of an SHD-format file, each checked when it is taken (``Recordings.events``: one bad
    recording is one error, skipped alone with data.on_error=skip); units are checked against the dataset's
    channels per sample (dataset._check_sensor)."""
    return shd.read(path)


CAMERA = {name: lambda c, s=sensor: s for name, sensor in (("nmnist", nmnist.SENSOR), ("dvs", (128, 128)))}
DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(CAMERA["nmnist"], tuple(map(str, range(10))), 1, 310_000,
                          lambda c, s: _nmnist_layout(
                              digits.digits_folder(cache_dir(c), c.seed, c.n_train, c.n_test), s),
                          nmnist.read_bin, 4000, 1000, simulated=True),
    "fashion": DatasetSpec(CAMERA["nmnist"], ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                           "sneaker", "bag", "ankle-boot"), 1, 310_000,
                           lambda c, s: _nmnist_layout(digits.fashion_folder(
                               cache_dir(c), Path(c.root) if c.root else digits.FASHION_ROOT, c.seed, c.n_train,
                               c.n_test), s),
                           nmnist.read_bin, 60_000, 10_000, simulated=True),
    "nmnist": DatasetSpec(CAMERA["nmnist"], tuple(map(str, range(10))), 1, 310_000,
                          lambda c, s: _nmnist_layout(_root(c), s), nmnist.read_bin),
    # DvsGesture: one file per user and lighting, up to a few hundred MB; CIFAR10-DVS: one sample per file, ~1-5 MB
    "dvsgesture": DatasetSpec(CAMERA["dvs"], gesture.CLASSES, 4, 1_500_000,
                              lambda c, s: gesture.list_split(_root(c), s, c.on_error == "skip"), _read_gesture,
                              max_bytes=2 << 30),
    "cifar10dvs": DatasetSpec(CAMERA["dvs"], CIFAR10_CLASSES, 4, 1_000_000, _cifar10dvs, _read_cifar,
                              max_bytes=256 << 20),
    # audio: a 1-D sensor of cochlea channels; 50 bins of 20 ms (Loihi 2 allows up to 256 steps per inference)
    "spoken_digits": DatasetSpec(lambda c: (c.channels,), speech.CLASSES, 1, 1_000_000,
                                 lambda c, s: _shd_layout(spoken.folder(cache_dir(c), c.seed, c.channels), s),
                                 _read_shd, max_bytes=1 << 30, simulated=True, n_bins=50),
    # SHD's recordings run to about 1.4 s: all of it in 56 bins of 25 ms (within a run's data.max_bins of 64)
    "shd": DatasetSpec(lambda c: (700,), speech.CLASSES, 1, 1_400_000, lambda c, s: _shd_layout(_root(c), s),
                       _read_shd, max_bytes=shd.MAX_BYTES, n_bins=56),
}


def auto_arch(sensor: tuple[int, ...]) -> str:
    """``model.arch=auto``: conv for a camera (H, W), recurrent for a 1-D sensor of channels (audio)."""
    return "conv" if len(sensor) == 2 else "recurrent"


def resolve(cfg: RunConfig) -> RunConfig:
    """Fill the dataset's defaults into every data setting left at 0, so config.json states what ran."""
    d = cfg.data
    if d.name not in DATASETS:
        raise ConfigError(f"config data.name = {d.name!r} is not allowed: expected one of {sorted(DATASETS)}")
    spec = DATASETS[d.name]
    d = replace(d, n_train=d.n_train or spec.n_train, n_test=d.n_test or spec.n_test,
                duration_us=d.duration_us or spec.duration_us, downsample=d.downsample or spec.downsample,
                n_bins=d.n_bins or min(spec.n_bins, d.max_bins))
    if d.name == "digits" and (d.n_train < 10 or d.n_test < 10 or d.n_train + d.n_test > 5000):
        raise ConfigError(f"config data.n_train/n_test = {d.n_train}/{d.n_test} is not allowed: "
                          "each >= 10 and together <= 5000 for the built-in digits")
    cfg = replace(cfg, data=d)
    if cfg.model.arch == "auto":
        cfg = replace(cfg, model=replace(cfg.model, arch=auto_arch(spec.sensor(d))))
    validate(cfg)               # again, with the dataset's defaults in place
    return cfg
