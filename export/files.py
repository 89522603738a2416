"""Writing a file atomically: what every exporter and the run folder use, so a crash never leaves half a file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def readable_by_others(path: Path, mode: int) -> None:
    """mkstemp/mkdtemp create 0600/0700; give our outputs the permissions a plain write would have."""
    os.chmod(path, mode & ~_UMASK)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        readable_by_others(Path(tmp), 0o666)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
