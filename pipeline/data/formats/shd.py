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
MAX_SECONDS = 3600.0        # SHD and SSC recordings last about a second; a spike time beyond an hour is damage
                            # (and 1e30 s in microseconds would overflow int64)


@dataclass(frozen=True)
class Recordings:
    """The recordings of one file. ``events(i)`` (and ``recordings[i]``) checks recording ``i`` when it is taken,
    so that one damaged recording is one error naming it, not the whole file's."""
    times: list[np.ndarray]          # seconds, per recording
    units: list[np.ndarray]
    labels: np.ndarray               # (N,) int64
    speakers: np.ndarray             # (N,) int64
    keys: tuple[str, ...]            # class names by label
    speaker_names: tuple[str, ...] = ()
    path: str = ""                   # the file read (names it in errors)
    channels: int = 0                # units must lie in 0..channels - 1 (0: checked later, against the sensor)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.events(i)

    def events(self, i: int) -> np.ndarray:
        """Recording ``i`` as events: x = unit, y = 0, t in microseconds, p = 0; an :class:`EventFileError`
        names the recording and what is wrong with it."""
        if not 0 <= i < len(self.labels):
            raise EventFileError(f"{self.path}#{i}: no such recording in the file ({len(self.labels)} recordings)")
        t, u = check_recording(self.times[i], self.units[i], f"{self.path}#{i}", self.channels)
        t = np.rint(t.astype(np.float64) * 1e6).astype(np.int64)
        return make_events(u.astype(np.int64), np.zeros(len(t), np.int64), t, np.zeros(len(t), np.int64))


def check_recording(times, units, name: str, channels: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One recording's spike times (seconds, floating point, finite, in [0, MAX_SECONDS]) and units (whole
    numbers >= 0, below ``channels`` when given), or an :class:`EventFileError` naming the first problem."""
    t, u = np.asarray(times), np.asarray(units)
    if t.ndim != 1 or u.ndim != 1:
        raise EventFileError(f"{name}: times of shape {t.shape} and units of shape {u.shape}; a recording holds "
                             "one time and one unit per spike")
    if t.dtype.kind != "f":
        raise EventFileError(f"{name}: spike times are {t.dtype} values; SHD stores times in seconds as "
                             "floating-point numbers")
    if u.dtype.kind not in "iu":
        raise EventFileError(f"{name}: units are {u.dtype} values; SHD stores each spike's channel as a whole number")
    if len(t) != len(u):
        raise EventFileError(f"{name}: {len(t)} spike times but {len(u)} units; SHD has one unit per spike")
    if len(t):
        bad = ~np.isfinite(t) | (t < 0) | (t > MAX_SECONDS)
        if bad.any():
            k = int(np.argmax(bad))
            raise EventFileError(f"{name}: spike {k} at time {float(t[k]):g} s; times must be finite seconds in "
                                 f"[0, {MAX_SECONDS:g}] (SHD recordings last about a second)")
        bad = (u < 0) | (u >= channels) if channels else u < 0
        if bad.any():
            k = int(np.argmax(bad))
            raise EventFileError(f"{name}: spike {k} on unit {int(u[k])}; " + (
                f"units are channels 0..{channels - 1} ({channels} channels)" if channels
                else "a unit is a channel number, never negative"))
    return t, u


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


def _missing(path: Path) -> None:
    """The publisher's files come gzipped (shd_test.h5.gz): say so when only that is there."""
    gz = Path(f"{path}.gz")
    if not path.exists() and gz.is_file():
        raise EventFileError(f"{path}: not found, but {gz.name} is: SHD's files are published gzipped; unpack it "
                             f"first (gunzip -k {gz})")


def labels(path: Path, classes: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The labels and speakers of an SHD-format file (to list its recordings), read defensively; labels must name
    one of ``classes`` classes when given."""
    from hardware import h5safe
    from hardware.errors import GraphError
    _missing(path)
    try:
        h5safe.check(path, MAX_BYTES, what="SHD-format HDF5 file")
        with h5py.File(path, "r") as f:
            for key in ("labels", "extra/speaker"):
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise EventFileError(f"{path}: not an SHD-format file: no {key} (SHD's layout: spikes/times, "
                                         "spikes/units, labels, extra/speaker, extra/keys)")
                if f[key].ndim != 1:
                    raise EventFileError(f"{path}: {key} has shape {f[key].shape}; SHD stores one value per "
                                         "recording (a 1-D array)")
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
    if len(out) and (out.min() < 0 or (classes and out.max() >= classes)):
        k = int(np.argmax((out < 0) | (out >= classes))) if classes else int(np.argmax(out < 0))
        raise EventFileError(f"{path}#{k}: label {int(out[k])}; SHD has {classes} classes, labels 0..{classes - 1}"
                             if classes else f"{path}#{k}: label {int(out[k])} is negative")
    return out.astype(np.int64), speakers.astype(np.int64)


def read(path: Path, channels: int = 0) -> Recordings:
    """Every recording in an SHD-format file (each checked when taken: :meth:`Recordings.events`, units below
    ``channels`` when given); an :class:`EventFileError` names the file and what does not fit."""
    from hardware import h5safe
    from hardware.errors import GraphError
    _missing(path)
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
            for key in ("spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys"):
                if not isinstance(f[key], h5py.Dataset) or f[key].ndim != 1:
                    shape = f[key].shape if isinstance(f[key], h5py.Dataset) else "a group"
                    raise EventFileError(f"{path}: {key} is {shape}; SHD stores one entry per recording (or class, "
                                         "for extra/keys) in a 1-D array")
            n = len(f["labels"])
            sizes = {k: len(f[k]) for k in ("spikes/times", "spikes/units", "extra/speaker")}
            if any(s != n for s in sizes.values()):
                raise EventFileError(f"{path}: {n} labels but " + ", ".join(f"{s} {k}" for k, s in sizes.items()))
            times, units = list(f["spikes/times"][()]), list(f["spikes/units"][()])
            labels = f["labels"][()]
            speakers = f["extra/speaker"][()]
            keys = tuple(k.decode(errors="replace") if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()])
            names = tuple(k.decode(errors="replace") for k in f["extra/meta_info/name"][()]) \
                if "extra/meta_info/name" in f else ()
    except EventFileError:
        raise
    except Exception as e:              # h5py raises many types on a damaged file
        raise EventFileError(f"{path}: not a readable SHD-format file ({type(e).__name__}: "
                             f"{' '.join(str(e).split())})") from None
    for key, a in (("labels", labels), ("extra/speaker", speakers)):
        if a.dtype.kind not in "iu":
            raise EventFileError(f"{path}: {key} are {a.dtype}, not whole numbers")
    labels = labels.astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= len(keys)):
        k = int(np.argmax((labels < 0) | (labels >= len(keys))))
        raise EventFileError(f"{path}#{k}: label {int(labels[k])}, but extra/keys names {len(keys)} classes")
    return Recordings(times, units, labels, speakers.astype(np.int64), keys, names, str(path), channels)
