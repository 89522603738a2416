"""Output folders (run, verify, distill): written atomically, and never at the cost of anything we did not write.

A folder this tool wrote holds a marker, ``.nmpipe-folder.json``, naming every entry it wrote. ``--out`` may name
a folder that does not exist yet or an empty one; an earlier folder of ours only with ``overwrite`` (the CLI's
``--overwrite``), and then only while it holds nothing but what we wrote. Anything else (a file, a symbolic
link, a dataset, a folder of ours that someone added a file to) is refused before any work starts, naming the
path. The new folder is built in ``.NAME.partial-*`` beside ``out``, with a marker naming its owner process from
the start, and moved into place only when complete. Partial folders left by a killed run, and a previous folder
set aside during the final swap, are recognised by their marker and a dead owner, and cleaned up (or put back)
by the next run with the same ``out``.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from export.files import atomic_write, readable_by_others

MARKER = ".nmpipe-folder.json"
TOOL = "nmpipe"
# What a folder of each kind may hold: a partial folder left by a killed run is cleaned of these names (and the
# temporary files atomic_write makes of them, NAME.*.tmp) and nothing else.
OUTPUTS = {"run": ("config.json", "model.pt", "model.nir", "model.onnx", "model_float.onnx", "model.net", "vectors.h5",
                   "certificate.json", "report.json", "report.html", "training.png", "rasters.png", "divergence.png",
                   "delays.png"),
           "verify": ("model.nir", "model.net", "vectors.h5", "certificate.json", "report.json", "report.html",
                      "rasters.png", "divergence.png", "confusion.png"),
           "distill": ("distilled.npz", "meta.json", "samples.png", "loss.png", "events")}


class OutputError(ValueError):
    """An output path this tool must not or cannot write; the message names the path and why."""


def listing(folder: Path, kind: str = "run") -> str:
    """The files ``folder`` holds, in the order :data:`OUTPUTS` names them (a run without delays has no
    ``delays.png``, one whose network netx cannot run no ``model.net``), for a summary line."""
    names = [p.name for p in folder.iterdir() if p.name != MARKER]
    order = OUTPUTS.get(kind, ())
    return ", ".join(sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n)))


def default_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


# --- owners: a process on this host, told apart from a later one with the same pid by its start time ----------

def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]          # field 22, after the parenthesised command name


def _owner() -> dict:
    return {"pid": os.getpid(), "start": _start_time(os.getpid()), "host": socket.gethostname()}


def _owner_dead(owner: dict) -> bool:
    """True only when we can tell: the owner ran on this host and is gone (or its pid now names another)."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    start = _start_time(owner["pid"])
    return start is not None and owner.get("start") is not None and start != owner["start"]


# --- what is ours ---------------------------------------------------------------------------------------------

def _marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == TOOL else None


def _entries(folder: Path) -> list[str]:
    """Every path under ``folder``, relative, in POSIX form (subfolders and what they hold included)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _foreign_entries(folder: Path, marker: dict | None) -> list[str]:
    """Paths under ``folder`` that the marker does not list (all of them when there is no marker)."""
    ours = set(marker.get("files", [])) | {MARKER} if marker else set()
    return [p for p in _entries(folder) if p not in ours]


def _remove_ours(folder: Path) -> None:
    """Delete a folder of ours, the marker last, so that an interrupted removal is still recognised as ours."""
    for entry in folder.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (folder / MARKER).unlink(missing_ok=True)
    folder.rmdir()


def _remove_outputs(folder: Path, marker: dict) -> bool:
    """Remove from a partial folder the outputs its kind writes (OUTPUTS) and the marker, then the folder when
    nothing else is left in it; anything else stays, and so does the folder (returns False then)."""
    names = set(OUTPUTS.get(marker.get("kind"), ()))
    for entry in folder.iterdir():
        base = entry.name.split(".")[0] if entry.name.endswith(".tmp") else None
        ours = entry.name in names or (base is not None and any(entry.name.startswith(n + ".") for n in names))
        if not ours or entry.is_symlink():
            continue
        if entry.is_dir():
            for f in sorted(entry.rglob("*"), key=lambda q: len(q.parts), reverse=True):
                if f.is_file() and not f.is_symlink() and (f.suffix == ".bin" or f.name.endswith(".tmp")):
                    f.unlink()
                elif f.is_dir() and not any(f.iterdir()):
                    f.rmdir()
            if not any(entry.iterdir()):
                entry.rmdir()
        else:
            entry.unlink()
    left = [e for e in folder.iterdir() if e.name != MARKER]
    if left:
        return False
    (folder / MARKER).unlink(missing_ok=True)
    folder.rmdir()
    return True


def check_target(out: Path, overwrite: bool = False) -> None:
    """Raise :class:`OutputError` unless ``out`` may be written (or replaced, with ``overwrite``)."""
    try:
        _check_target(out, overwrite)
    except OSError as e:
        raise OutputError(f"{out}: cannot be checked ({e.strerror or e}); nothing was written") from None


def _check_target(out: Path, overwrite: bool) -> None:
    if str(out) in ("", "."):
        raise OutputError("--out names the current folder; give a new folder for the results")
    if out.is_symlink():
        raise OutputError(f"{out}: is a symbolic link; give the folder itself (nothing was written)")
    if not out.exists():
        for parent in out.parents:
            if parent.exists() and not parent.is_dir():
                raise OutputError(f"{out}: cannot be created: {parent} is a file, not a folder")
        return
    if not out.is_dir():
        raise OutputError(f"{out}: is a file, not a folder; this tool writes only new folders or its own "
                          "(nothing was changed)")
    if os.path.ismount(out):
        raise OutputError(f"{out}: is a mount point; the finished folder is renamed into place, which a mount point "
                          "refuses: give a folder inside it (nothing was written)")
    entries = list(out.iterdir())
    if not entries:
        return
    marker = _marker(out)
    foreign = _foreign_entries(out, marker)
    if marker is None:
        raise OutputError(f"{out}: is a folder this tool did not write ({len(entries)} entries, e.g. "
                          f"{foreign[0]!r}); choose a new --out (nothing was changed)")
    if foreign:
        raise OutputError(f"{out}: an earlier {marker.get('kind', 'run')} folder that now also holds "
                          f"{', '.join(map(repr, foreign[:3]))}, which this tool did not write; it is left as it "
                          "is: choose another --out")
    if not overwrite:
        raise OutputError(f"{out}: holds an earlier {marker.get('kind', 'run')} (written "
                          f"{marker.get('written', '?')}); pass --overwrite to replace it, or choose another --out")


def clean_stale(out: Path) -> list[Path]:
    """Tidy what killed runs left beside ``out``: partial folders of dead owners are removed; a previous folder
    set aside during a swap is put back when ``out`` is missing, or removed when ``out`` replaced it."""
    done: list[Path] = []
    if not out.parent.is_dir():
        return done
    for p in sorted(out.parent.glob(f".{out.name}.partial-*")):
        marker = _marker(p) if p.is_dir() and not p.is_symlink() else None
        if marker is not None and not marker.get("kept") and _owner_dead(marker.get("owner", {})):
            if _remove_outputs(p, marker):      # named and marked by us, its owner gone: its outputs are ours
                done.append(p)
        elif marker is None and p.is_dir() and not p.is_symlink() and not any(p.iterdir()) \
                and time.time() - p.stat().st_mtime > 60:
            p.rmdir()                # killed between creating the folder and writing its marker
            done.append(p)
    for p in sorted(out.parent.glob(f".{out.name}.old-*")):
        marker = _marker(p) if p.is_dir() and not p.is_symlink() else None
        if marker is None or _foreign_entries(p, marker) or not _owner_dead(marker.get("swapped_by", {})):
            continue
        if out.exists() or out.is_symlink():
            _remove_ours(p)          # the swap completed: this is the replaced folder
        else:
            os.replace(p, out)       # killed between the two renames: put the previous folder back
        done.append(p)
    return done


def _identity(out: Path) -> tuple | None:
    """What is at ``out`` now: nothing (None), or which folder (its marker's time and owner, and its inode), to
    tell at the end whether another run replaced it meanwhile."""
    try:
        info = out.stat()
    except OSError:
        return None
    marker = _marker(out) if out.is_dir() else None
    return info.st_ino, (marker or {}).get("written"), json.dumps((marker or {}).get("owner"), sort_keys=True)


def _write_marker(folder: Path, kind: str, **extra) -> None:
    files = [p for p in _entries(folder) if p != MARKER]
    write_json(folder / MARKER, {"tool": TOOL, "kind": kind, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "owner": _owner(), "files": files, **extra})


def _swap_in(stage: Path, out: Path, overwrite: bool) -> None:
    """Move the finished ``stage`` to ``out``; an earlier folder of ours there is set aside, then removed."""
    if out.exists() and any(out.iterdir()):
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        marker = _marker(out)
        write_json(out / MARKER, {**marker, "swapped_by": _owner()})
        os.replace(out, old)
        os.replace(stage, out)
        _remove_ours(old)
    else:
        os.replace(stage, out)               # onto nothing, or onto an empty folder


@contextlib.contextmanager
def staged(out: Path | str, kind: str = "run", overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh folder beside ``out``; on success it replaces ``out`` whole, on failure it is removed.

    ``out`` is checked first (see :func:`check_target`): a failed, interrupted or refused run leaves whatever was
    at ``out`` exactly as it was, and a run that cannot write there fails before any work. If ``out`` changed
    while we worked so that it may no longer be replaced, the results are kept beside it and named."""
    out = Path(out)
    try:
        clean_stale(out)                     # first: it may put back a folder that a killed run set aside
    except OSError as e:
        raise OutputError(f"{out}: cannot tidy what an earlier run left beside it ({e.strerror or e})") from None
    check_target(out, overwrite)
    found = _identity(out)
    stage = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        readable_by_others(stage, 0o777)
        _write_marker(stage, kind)
    except OSError as e:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)     # created a moment ago, by us
        raise OutputError(f"{out}: cannot write the output folder there ({e.strerror or e})") from None
    try:
        try:
            yield stage
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OutputError(f"{out}: no space left on the device for the results ({e.strerror}); nothing "
                                  "was written there" + (", and the earlier folder there is unchanged"
                                                         if found else "")) from None
            raise
        _write_marker(stage, kind)
        try:
            check_target(out, overwrite)     # again: the folder may have changed while we worked
            if _identity(out) != found:
                raise OutputError(f"{out}: another run wrote it while this one worked; it is left as that run "
                                  "left it")
        except OutputError as e:
            kept = out.with_name(f"{out.name}.kept-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
            _write_marker(stage, kind, kept=True)
            os.replace(stage, kept)
            raise OutputError(f"{e} [it changed while this run worked; the results are in {kept}]") from None
        _swap_in(stage, out, overwrite)
    finally:
        if stage.exists():
            _remove_ours(stage)
