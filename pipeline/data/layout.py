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


@dataclass(frozen=True)
class Recording:
    path: Path
    samples: tuple[Sample, ...]


@dataclass
class Listing:
    recordings: list[Recording] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)    # {"file": ..., "error": ...}, only with on_error=skip


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: no such folder (expected {what})")
    return path


def list_class_folders(base: Path, pattern: str, classes: dict[str, int], what: str) -> list[Recording]:
    """``base/<class>/<pattern>`` -> one single-sample recording per file, in a fixed order."""
    require_dir(base, what)
    recs = [Recording(f, (Sample(classes[d.name]),)) for d in sorted(base.iterdir()) if d.name in classes
            for f in sorted(d.glob(pattern))]
    if not recs:
        raise DataError(f"{base}: no {pattern} files (expected {what})")
    return recs
