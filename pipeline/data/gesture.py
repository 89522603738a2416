"""DVS128 Gesture as distributed: IBM's AEDAT 3.1 folder, or tonic's preprocessed .npy folders.

IBM's ``DvsGesture/``: ``userNN_<lighting>.aedat`` recordings, each with ``userNN_<lighting>_labels.csv``
(``class,startTime_usec,endTime_usec``; classes 1-11), and ``trials_to_train.txt`` / ``trials_to_test.txt``
naming the recordings of each split. Each labelled interval is one sample.
tonic's layout: ``ibmGestureTrain/`` and ``ibmGestureTest/``, one folder per recording, one ``<class>.npy`` per
gesture holding rows (x, y, p, t) with t in milliseconds (tonic multiplies by 1000 on reading).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.events import make_events
from pipeline.data.formats.errors import EventFileError
from pipeline.data.layout import (
    DataError,
    Listing,
    Recording,
    Sample,
    require_dir,
    require_file,
)

CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
           "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll",
           "air_drums", "air_guitar", "other_gestures")
SENSOR = (128, 128)
_TRIALS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
_TONIC = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}


def _labels(csv: Path) -> tuple[Sample, ...]:
    require_file(csv, "a gesture label file")
    try:
        rows = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as e:
        raise DataError(f"{csv}: cannot read gesture labels ({e})") from None
    if rows.shape[1] != 3 or not ((rows[:, 0] >= 1) & (rows[:, 0] <= len(CLASSES))).all():
        raise DataError(f"{csv}: expected rows class,startTime_usec,endTime_usec with class 1..{len(CLASSES)}")
    return tuple(Sample(int(c) - 1, int(a), int(b)) for c, a, b in rows)


def list_split(root: Path, split: str, skip: bool) -> Listing:
    if (root / _TONIC[split]).is_dir():
        base, out = root / _TONIC[split], Listing()
        for f in (f for d in sorted(base.iterdir()) if d.is_dir() for f in sorted(d.glob("*.npy"))):
            if f.stem.isdigit() and int(f.stem) < len(CLASSES):
                out.recordings.append(Recording(f, (Sample(int(f.stem)),)))
                continue
            error = (f"{f}: tonic's layout names each gesture file by its class index, 0..{len(CLASSES) - 1} "
                     f"(e.g. 0.npy for {CLASSES[0]})")
            if not skip:
                raise DataError(error)
            out.skipped.append({"file": str(f), "error": error})
        if not out.recordings:
            raise DataError(f"{base}: no <class>.npy files in its recording folders")
        return out
    trials = root / _TRIALS[split]
    if not trials.exists():
        require_dir(root, "DVS Gesture: trials_to_train.txt + .aedat + _labels.csv, or tonic's ibmGestureTrain/")
        raise DataError(f"{trials}: not found (expected IBM's DvsGesture layout or tonic's {_TONIC[split]}/)")
    out = Listing()
    for name in require_file(trials, "a list of trials").read_text().split():
        aedat, csv = root / name, root / name.replace(".aedat", "_labels.csv")
        try:
            if not aedat.exists():
                raise DataError(f"{aedat}: listed in {trials.name} but missing")
            if not csv.exists():
                raise DataError(f"{csv}: label file missing for {aedat.name}")
            out.recordings.append(Recording(aedat, _labels(csv)))
        except DataError as e:
            if not skip:
                raise
            out.skipped.append({"file": str(aedat), "error": str(e)})
    if not out.recordings and not out.skipped:
        raise DataError(f"{trials}: lists no recordings")
    return out


def read_tonic_npy(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:       # numpy raises OSError, ValueError, EOFError, ... on a damaged file
        raise EventFileError(f"{path}: not a readable .npy file ({' '.join(str(e).split())})") from None
    if not isinstance(a, np.ndarray):
        a.close()
        raise EventFileError(f"{path}: an .npz archive, not the .npy array of x, y, p, t that tonic writes")
    if a.ndim != 2 or a.shape[1] != 4 or a.dtype.kind not in "biuf":
        raise EventFileError(f"{path}: expected an (N, 4) numeric array of x, y, p, t; found {a.dtype} {a.shape}")
    if not np.all(np.isfinite(a)) or (len(a) and (a.min() < 0 or a[:, :2].max() > 2**15 - 1 or a[:, 2].max() > 1
                                                  or a[:, 3].max() > 2**50)):
        raise EventFileError(f"{path}: holds non-finite, negative or out-of-range values (x, y, t >= 0, "
                             "polarity 0/1, t in ms)")
    return make_events(a[:, 0], a[:, 1], np.round(a[:, 3] * 1000).astype(np.int64), a[:, 2])


def encode_tonic_npy(events: np.ndarray) -> np.ndarray:
    return np.stack([events["x"], events["y"], events["p"], events["t"] / 1000.0], axis=1)
