"""What a dataset folder holds: recordings, each with one or more labelled samples, per split."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class DataError(ValueError):
    """A dataset folder that does not have the expected layout; the message names the folder or file."""


@dataclass(frozen=True)
class Sample:
    label: int
    t0: int | None = None    # for recordings holding several samples: cut [t0, t1) and start time at t0
    t1: int | None = None
    index: int | None = None     # for files holding many recordings (SHD): which one
    group: int | None = None     # who recorded it (SHD: the speaker), where the dataset says


@dataclass(frozen=True)
class Recording:
    path: Path
    samples: tuple[Sample, ...]


@dataclass
class Listing:
    recordings: list[Recording] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)    # {"file": ..., "error": ...}, only with on_error=skip


def require_file(path: Path, what: str, max_bytes: int = 16 << 20) -> Path:
    """``path`` must be a plain file of at most ``max_bytes`` (a FIFO would block the reader forever)."""
    import stat
    try:
        info = path.stat()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e}; expected {what})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: is not a regular file (expected {what})")
    if info.st_size > max_bytes:
        raise DataError(f"{path}: {info.st_size:,} bytes; {what} is at most {max_bytes:,}")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        found = "a file" if path.is_file() else "not a folder" if path.exists() else "no such folder"
        raise DataError(f"{path}: {found} (expected the folder holding {what})" if found != "no such folder" else
                        f"{path}: no such folder (expected {what})")
    return path


def list_class_folders(base: Path, pattern: str, classes: dict[str, int], what: str) -> list[Recording]:
    """``base/<class>/<pattern>`` -> one single-sample recording per file, in a fixed order."""
    require_dir(base, what)
    folders = [d for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    unknown = [d for d in folders if d.name not in classes]
    if unknown:
        raise DataError(f"{unknown[0]}: not a class folder of this dataset (expected folders named "
                        f"{', '.join(classes)}; {what}); rename it or move it out of {base}")
    recs = [Recording(f, (Sample(classes[d.name]),)) for d in folders for f in sorted(d.glob(pattern))]
    if not recs:
        raise DataError(f"{base}: no {pattern} files (expected {what})")
    return recs


def check_same_classes(train: Listing, test: Listing, classes: tuple[str, ...], where: str) -> None:
    """Train and test must hold the same classes: a class missing from one split (a renamed or emptied folder)
    would train a network that never learns it, or test one on nothing."""
    present = [{s.label for r in listing.recordings for s in r.samples} for listing in (train, test)]
    for have, lack, name in ((present[1], present[0], "training"), (present[0], present[1], "test")):
        missing = sorted(have - lack)
        if missing:
            raise DataError(f"{where}: class{'es' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(classes[c]) for c in missing)} "
                            f"{'have' if len(missing) > 1 else 'has'} no {name} samples but the other split has "
                            "some; both splits need the same classes (a renamed or empty class folder?)")
