"""Small dataset folders in each publisher's genuine layout and format, for tests."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from pipeline.data import gesture
from pipeline.data.events import make_events
from pipeline.data.formats import aedat2, aedat31, idx, nmnist
from pipeline.data.registry import CIFAR10_CLASSES


def random_events(rng, n, sensor, duration_us, t0=0):
    return make_events(rng.integers(0, sensor[1], n), rng.integers(0, sensor[0], n),
                       t0 + np.sort(rng.integers(0, duration_us, n)), rng.integers(0, 2, n))


def nmnist_folder(root: Path, per_class=(3, 1), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in zip(("Train", "Test"), per_class):
        for digit in range(10):
            (root / split / str(digit)).mkdir(parents=True)
            for k in range(n):
                nmnist.write_bin(root / split / str(digit) / f"{k:05d}.bin", random_events(rng, 300, (34, 34), 300_000))
    return root


def gesture_folder(root: Path, seed=0) -> Path:
    """IBM layout: three recordings of all 11 gestures (two train, one test), AEDAT 3.1 + labels csv."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    names = ["user01_fluorescent.aedat", "user02_led.aedat", "user24_natural.aedat"]
    for name in names:
        starts = 5_000_000 + np.arange(11) * 2_000_000       # gestures of 1.5 s with gaps, as in the real files
        events = np.concatenate([random_events(rng, 400, (128, 128), 1_500_000, int(s)) for s in starts])
        (root / name).write_bytes(aedat31.encode_polarity(events, packet_size=1000))
        rows = "\n".join(f"{c + 1},{s},{s + 1_500_000}" for c, s in enumerate(starts))
        (root / name.replace(".aedat", "_labels.csv")).write_text("class,startTime_usec,endTime_usec\n" + rows + "\n")
    (root / "trials_to_train.txt").write_text("\n".join(names[:2]) + "\n")
    (root / "trials_to_test.txt").write_text(names[2] + "\n")
    return root


def gesture_tonic_folder(root: Path, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for folder, users in (("ibmGestureTrain", ("user01_led", "user02_natural")), ("ibmGestureTest", ("user24_led",))):
        for user in users:
            (root / folder / user).mkdir(parents=True)
            for c in range(11):
                np.save(root / folder / user / f"{c}.npy",
                        gesture.encode_tonic_npy(random_events(rng, 300, (128, 128), 1_400_000)))
    return root


def cifar10dvs_folder(root: Path, per_class=10, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for name in CIFAR10_CLASSES:
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            (root / name / f"cifar10_{name}_{k}.aedat").write_bytes(
                aedat2.encode_dvs128(random_events(rng, 500, (128, 128), 1_200_000)))
    return root


def fashion_folder(root: Path, n_train=30, n_test=10, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx.encode_idx(images)))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx.encode_idx(labels)))
    return root


def shd_folder(root: Path, n_train=40, n_test=20, channels=700, seed=0, seconds=1.0) -> Path:
    """shd_train.h5 and shd_test.h5 in SHD's layout: per recording a few hundred spikes over ``seconds``, each
    class firing its own band of channels (so a network has something to learn), speakers 0-3 train, 4-5 test."""
    from pipeline.data import speech
    from pipeline.data.formats import shd
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for name, n, speakers in (("shd_train.h5", n_train, (0, 1, 2, 3)), ("shd_test.h5", n_test, (4, 5))):
        labels = np.arange(n) % 20
        times, units = [], []
        for c in labels:
            k = int(rng.integers(200, 400))
            band = rng.integers(c * channels // 20, (c + 1) * channels // 20, k)
            units.append(np.where(rng.random(k) < 0.7, band, rng.integers(0, channels, k)).astype(np.uint16))
            times.append(np.sort(rng.random(k) * seconds).astype(np.float32))
        shd.write(root / name, shd.Recordings(times, units, labels, np.array(speakers * n)[:n], speech.CLASSES,
                                              tuple(f"speaker{i}" for i in range(6))))
    return root
