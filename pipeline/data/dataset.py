"""Framed train/test tensors for a run: list, read, cut, denoise, downsample, bin, and cache on disk.

The framed tensors are cached under ``<cache>/frames/`` keyed by the dataset, its folder listing (names, sizes,
modification times) and every framing setting, so a second run does not parse events again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import stat
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import tonic.functional
from tqdm import tqdm

from pipeline.config import DataConfig
from pipeline.data.formats.errors import EventFileError
from pipeline.data.frames import frame_shape, to_frames
from pipeline.data.layout import DataError, Listing, check_same_classes
from pipeline.data.registry import DATASETS, DatasetSpec, cache_dir
from pipeline.data.split import Split
from pipeline.runfolder import atomic_write

FRAMES_VERSION = 2


def _check_sensor(events: np.ndarray, sensor: tuple[int, ...], path) -> np.ndarray:
    """``events``, or an error naming the first event outside the sensor (a pixel, or a cochlea channel)."""
    H, W = sensor if len(sensor) == 2 else (1, sensor[0])
    if not len(events):
        return events
    bad = (events["x"] < 0) | (events["x"] >= W) | (events["y"] < 0) | (events["y"] >= H)
    if bad.any():
        k = int(np.argmax(bad))
        x, y = int(events["x"][k]), int(events["y"][k])
        if len(sensor) == 2:
            raise EventFileError(f"{path}: event {k} at x={x}, y={y} lies outside the {W} x {H} sensor of this "
                                 f"dataset ({int(bad.sum())} events outside)")
        raise EventFileError(f"{path}: spike {k} on unit {x}; this dataset has {W} channels (units 0..{W - 1}; "
                             f"{int(bad.sum())} spikes outside)")
    return events


def _cut(events: np.ndarray, t0, t1) -> np.ndarray:
    if t0 is not None:
        events = events[(events["t"] >= t0) & (events["t"] < t1)]
    if len(events):
        events = events.copy()
        events["t"] -= events["t"][0] if t0 is None else t0
    return events


def framed_sensor(cfg: DataConfig) -> tuple[int, ...]:
    """The sensor as framed: (H, W) or (C,) of the dataset, divided by data.downsample (rounded up)."""
    return tuple(-(-n // cfg.downsample) for n in DATASETS[cfg.name].sensor(cfg))


def input_shape(cfg: DataConfig) -> tuple[int, ...]:
    """One time bin of the framed data, from the configuration alone: (2, H, W) or (C,)."""
    return frame_shape(framed_sensor(cfg))


def _frame(events: np.ndarray, cfg: DataConfig, spec: DatasetSpec) -> np.ndarray:
    if cfg.denoise_us and len(events):
        events = tonic.functional.denoise_numpy(events, filter_time=cfg.denoise_us)
    f = cfg.downsample
    sensor = framed_sensor(cfg)
    if f > 1:
        events = events.copy()
        events["x"] //= f
        events["y"] //= f
    return to_frames(events, cfg.n_bins, cfg.duration_us, sensor)


def _subsample(pairs: list, cap: int, seed: int) -> list:
    if not cap or cap >= len(pairs):
        return pairs
    keep = np.sort(np.random.default_rng(seed).permutation(len(pairs))[:cap])
    return [pairs[i] for i in keep]


def _key(cfg: DataConfig, split: str, pairs: list) -> str:
    files = sorted({rec.path for rec, _ in pairs})
    listing = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists()]
    blob = json.dumps([FRAMES_VERSION, split, asdict(replace(cfg, distilled="", val_fraction=0.0)), listing,
                       [(str(r.path), s.label, s.t0, s.t1, s.index) for r, s in pairs]], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_split(cfg: DataConfig, spec: DatasetSpec, split: str, listing: Listing | None = None) -> Split:
    listing = listing or spec.list_split(cfg, split)
    cap = cfg.n_train if split == "train" else cfg.n_test
    pairs = _subsample([(r, s) for r in listing.recordings for s in r.samples], cap, cfg.seed)
    cache = cache_dir(cfg) / "frames" / f"{cfg.name}-{split}-{_key(cfg, split, pairs)}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            groups = z["groups"] if z["groups"].size else None
            return Split(z["frames"], z["labels"], tuple(z["names"]), z["n_events"], z["duration_us"],
                         tuple(json.loads(str(z["skipped"]))), spec.classes, groups)
    skipped, rows, by_file = list(listing.skipped), [], {}
    for rec, s in pairs:
        by_file.setdefault(rec.path, []).append(s)
    for path, samples in tqdm(by_file.items(), desc=f"reading {cfg.name} {split}", unit="file", disable=None):
        try:
            events = _read(spec, path)
            if isinstance(events, np.ndarray):          # one recording (else a file of many, taken one by one)
                events = _check_sensor(events, spec.sensor(cfg), path)
        except EventFileError as e:
            if cfg.on_error != "skip":
                raise
            skipped.append({"file": str(path), "error": str(e)})
            continue
        for s in samples:
            if s.index is not None:             # a file of many recordings (SHD)
                name = f"{path}#{s.index}"
                try:
                    ev = _check_sensor(events[s.index], spec.sensor(cfg), name)
                except EventFileError as e:
                    if cfg.on_error != "skip":
                        raise
                    skipped.append({"file": name, "error": str(e)})
                    continue
            else:
                ev = _cut(events, s.t0, s.t1)
                name = str(path) if s.t0 is None else f"{path}[{s.t0}:{s.t1}]"
            if not len(ev):                  # a labelled interval of a recording with events, but none inside it
                error = f"{name}: no events in this labelled interval"
                if cfg.on_error != "skip":
                    raise EventFileError(error)
                skipped.append({"file": name, "error": error})
                continue
            rows.append((_frame(ev, cfg, spec), s.label, name, len(ev), int(ev["t"][-1] - ev["t"][0]),
                         -1 if s.group is None else s.group))
    if not rows:
        raise DataError(f"{cfg.root or cfg.name}: no readable {split} samples ({len(skipped)} skipped"
                        + (f", e.g. {skipped[0]['error']}" if skipped else "") + ")")
    frames, labels, names, n_events, spans, groups = zip(*rows)
    groups = np.array(groups, np.int64)
    out = Split(np.stack(frames), np.array(labels, np.int64), names, np.array(n_events), np.array(spans),
                tuple(skipped), spec.classes, groups if np.any(groups >= 0) else None)
    _save(cache, out)
    return out


def _read(spec: DatasetSpec, path: Path) -> np.ndarray:
    """One recording's events. A folder, FIFO or device where a file should be (reading a FIFO would wait
    forever), a file that cannot be opened, one larger than any recording of the dataset, or one with no events
    is an error naming the file (skipped and listed with data.on_error=skip)."""
    try:
        info = path.stat()
        with open(path, "rb") if stat.S_ISREG(info.st_mode) else contextlib.nullcontext():
            pass                    # opening (not reading) tells a permission problem before any parsing
    except OSError as e:
        raise EventFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(info.st_mode):
        raise EventFileError(f"{path}: is a folder, not an event file")
    if not stat.S_ISREG(info.st_mode):
        raise EventFileError(f"{path}: is not a regular file (a FIFO, socket or device); only plain files are read")
    if info.st_size > spec.max_bytes:
        raise EventFileError(f"{path}: {info.st_size:,} bytes, larger than any recording of this dataset "
                             f"(at most {spec.max_bytes:,})")
    events = spec.read(path)
    if isinstance(events, np.ndarray) and not len(events):
        raise EventFileError(f"{path}: holds no events ({path.stat().st_size} bytes)")
    return events


def _save(path: Path, s: Split) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:   # a file object: np.savez would append .npz to the temporary name
            np.savez(f, frames=s.frames, labels=s.labels, names=np.array(s.names), n_events=s.n_events,
                     duration_us=s.duration_us, skipped=json.dumps(list(s.skipped)),
                     groups=np.zeros(0, np.int64) if s.groups is None else s.groups)
    atomic_write(path, write)


def load_split(cfg: DataConfig, split: str) -> Split:
    """One real split ("train" or "test") of the configured dataset."""
    return _read_split(cfg, DATASETS[cfg.name], split)


def load(cfg: DataConfig) -> tuple[Split, Split]:
    """The real train and test splits of the configured dataset (``cfg`` with dataset defaults resolved); a run's
    training, validation and test sets come from ``pipeline/data/sets.py``."""
    spec = DATASETS[cfg.name]
    train, test = spec.list_split(cfg, "train"), spec.list_split(cfg, "test")
    if not spec.simulated:          # a user's folder: a class in one split only is a renamed or emptied folder
        check_same_classes(train, test, spec.classes, cfg.root)
    return _read_split(cfg, spec, "train", train), _read_split(cfg, spec, "test", test)


def summary(cfg: DataConfig, train: Split, test: Split, val: Split | None = None) -> dict:
    """What was read: samples per split and class, sensor, events per sample, duration, skipped files (and the
    validation split held out of the training split, when given)."""
    def stats(s: Split) -> dict:
        counts = np.bincount(s.labels, minlength=len(s.classes))
        return {"samples": len(s.labels), "per_class": dict(zip(s.classes, map(int, counts))),
                "events_per_sample": {k: int(f(s.n_events)) for k, f in (("min", np.min), ("median", np.median),
                                                                         ("max", np.max))},
                "duration_us": {k: int(f(s.duration_us)) for k, f in (("min", np.min), ("median", np.median),
                                                                      ("max", np.max))},
                "skipped": list(s.skipped),
                **({"speakers": sorted(int(g) for g in np.unique(s.groups))} if s.groups is not None else {})}
    spec = DATASETS[cfg.name]
    return {"name": cfg.name, "root": cfg.root, "sensor": list(spec.sensor(cfg)),
            "frames": list(train.frames.shape[1:]), "train": stats(train),
            **({"validation": stats(val)} if val is not None and len(val.labels) else {}), "test": stats(test)}
