"""The Heidelberg spiking data sets' HDF5 layout (SHD and SSC, Cramer et al. 2020), read and written.

One file per split holds every recording::

    spikes/times    variable-length float arrays: each recording's spike times, seconds
    spikes/units    variable-length uint16 arrays: each spike's channel (0..699 in SHD)
    labels          uint16, one class per recording
    extra/speaker   uint16, one speaker per recording
    extra/keys      the class names, by label (SHD: b"english-zero" ... b"german-neun")
    extra/meta_info optional: per speaker attributes (SHD: gender, age, body_height; ours: name)

tonic 1.7's ``tonic.datasets.SHD`` reads this layout but only after downloading the zipped release (its
existence check looks for the zip), and opens the file once per sample; :func:`read` is ours: it reads a file it
is given, whole, defensively (``hardware/h5safe.py``: no links, no external data, bounded sizes) and names the
file and what is missing or inconsistent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from export.files import atomic_write
from pipeline.data.events import make_events
from pipeline.data.formats.errors import EventFileError

MAX_BYTES = 4 << 30


@dataclass(frozen=True)
class Recordings:
    times: list[np.ndarray]          # seconds, per recording
    units: list[np.ndarray]
    labels: np.ndarray               # (N,) int64
    speakers: np.ndarray             # (N,) int64
    keys: tuple[str, ...]            # class names by label
    speaker_names: tuple[str, ...] = ()

    def events(self, i: int) -> np.ndarray:
        """Recording ``i`` as events: x = unit, y = 0, t in microseconds, p = 0."""
        t = np.rint(self.times[i].astype(np.float64) * 1e6).astype(np.int64)
        return make_events(self.units[i].astype(np.int64), np.zeros(len(t), np.int64), t, np.zeros(len(t), np.int64))


def write(path: Path, r: Recordings) -> None:
    """An SHD-format file of ``r`` (atomically)."""
    def go(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            times = f.create_dataset("spikes/times", (len(r.times),), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (len(r.units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, (t, u) in enumerate(zip(r.times, r.units)):
                times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
            f["labels"] = np.asarray(r.labels, np.uint16)
            f["extra/speaker"] = np.asarray(r.speakers, np.uint16)
            f["extra/keys"] = np.array([k.encode() for k in r.keys])
            if r.speaker_names:
                f["extra/meta_info/name"] = np.array([n.encode() for n in r.speaker_names])
    atomic_write(path, go)


def labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The labels and speakers of an SHD-format file (to list its recordings), read defensively."""
    from hardware import h5safe
    from hardware.errors import GraphError
    try:
        h5safe.check(path, MAX_BYTES, what="SHD-format HDF5 file")
        with h5py.File(path, "r") as f:
            for key in ("labels", "extra/speaker"):
                if key not in f or not isinstance(f[key], h5py.Dataset) or f[key].ndim != 1:
                    raise EventFileError(f"{path}: not an SHD-format file: no {key} (SHD's layout: spikes/times, "
                                         "spikes/units, labels, extra/speaker, extra/keys)")
            out, speakers = f["labels"][()], f["extra/speaker"][()]
    except GraphError as e:
        raise EventFileError(str(e)) from None
    except EventFileError:
        raise
    except Exception as e:
        raise EventFileError(f"{path}: not a readable SHD-format file ({type(e).__name__}: "
                             f"{' '.join(str(e).split())})") from None
    for key, a in (("labels", out), ("extra/speaker", speakers)):
        if a.dtype.kind not in "iu":
            raise EventFileError(f"{path}: {key} are {a.dtype}, not whole numbers")
    if len(speakers) != len(out):
        raise EventFileError(f"{path}: {len(out)} labels but {len(speakers)} extra/speaker")
    return out.astype(np.int64), speakers.astype(np.int64)


def read(path: Path, channels: int) -> Recordings:
    """Every recording in an SHD-format file whose units lie in 0..channels - 1; an
    :class:`EventFileError` names the file and what does not fit."""
    from hardware import h5safe
    from hardware.errors import GraphError
    try:
        h5safe.check(path, MAX_BYTES, what="SHD-format HDF5 file")
    except GraphError as e:
        raise EventFileError(str(e)) from None
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys")
                       if k not in f]
            if missing:
                raise EventFileError(f"{path}: not an SHD-format file: no {', '.join(missing)} (SHD's layout: "
                                     "spikes/times, spikes/units, labels, extra/speaker, extra/keys)")
            n = len(f["labels"])
            sizes = {k: len(f[k]) for k in ("spikes/times", "spikes/units", "extra/speaker")}
            if any(s != n for s in sizes.values()):
                raise EventFileError(f"{path}: {n} labels but " + ", ".join(f"{s} {k}" for k, s in sizes.items()))
            times, units = list(f["spikes/times"][()]), list(f["spikes/units"][()])
            labels = f["labels"][()].astype(np.int64)
            speakers = f["extra/speaker"][()].astype(np.int64)
            keys = tuple(k.decode(errors="replace") if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()])
            names = tuple(k.decode(errors="replace") for k in f["extra/meta_info/name"][()]) \
                if "extra/meta_info/name" in f else ()
    except EventFileError:
        raise
    except Exception as e:              # h5py raises many types on a damaged file
        raise EventFileError(f"{path}: not a readable SHD-format file ({type(e).__name__}: "
                             f"{' '.join(str(e).split())})") from None
    for i, (t, u) in enumerate(zip(times, units)):
        t, u = np.asarray(t), np.asarray(u)
        if len(t) != len(u) or t.dtype.kind != "f" or u.dtype.kind not in "iu":
            raise EventFileError(f"{path}: recording {i} has {len(t)} times and {len(u)} units (or not numbers)")
        if len(u) and (u.max() >= channels or not np.all(np.isfinite(t)) or t.min() < 0):
            raise EventFileError(f"{path}: recording {i} has units up to {int(u.max())} or times outside "
                                 f"[0, inf); this dataset has {channels} channels")
    if n and (labels.min() < 0 or labels.max() >= len(keys)):
        raise EventFileError(f"{path}: labels up to {int(labels.max())}, but extra/keys names {len(keys)} classes")
    return Recordings(times, units, labels, speakers, keys, names)
