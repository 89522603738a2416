"""One private temporary folder per process, so that nothing the tool's processes leave in the temp directory
outlives them.

Lava's worker processes write spike recordings to ``lava-*`` folders and Python's multiprocessing keeps its
sockets in ``pymp-*`` folders; a process that is killed cannot remove them. Every command therefore points
``tempfile`` (and, through ``TMPDIR``, every process it starts) at ``nmpipe-*`` in the system's temp
directory, marked with its owner; the folder is removed when the process ends by any path that runs code (a
return, an error, Ctrl-C, SIGTERM), and the next command removes the folders of owners that are gone
(SIGKILL), as it does for run folders (``pipeline/runfolder.py``). Nothing else in the temp directory is touched.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from multiprocessing.util import Finalize
from pathlib import Path

from pipeline.runfolder import _owner, _owner_dead

PREFIX = "nmpipe-"
MARKER = ".nmpipe-scratch.json"


def sweep(root: Path) -> list[Path]:
    """Remove the scratch folders in ``root`` whose owner process is gone; returns them."""
    gone = []
    for d in root.glob(f"{PREFIX}*"):
        try:
            if d.is_symlink() or not d.is_dir():
                continue
            owner = json.loads((d / MARKER).read_text()).get("owner", {})
        except (OSError, ValueError, AttributeError):
            continue                # not (yet) marked: not provably ours
        if isinstance(owner, dict) and _owner_dead(owner):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


@functools.lru_cache(maxsize=None)
def process_scratch() -> Path | None:
    """This process's scratch folder (created once): tempfile and the processes it starts write there. None
    where the temp directory's path is so long that multiprocessing's sockets inside it would exceed the
    108 bytes a Unix socket's path may have (then the temp directory is used as it is)."""
    root = Path(tempfile.gettempdir())
    sweep(root)
    if len(str(root)) + len(PREFIX) + 8 + 32 > 100:      # /pymp-XXXXXXXX/listener-XXXXXXXX
        return None
    d = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    (d / MARKER).write_text(json.dumps({"tool": "nmpipe", "owner": _owner()}))
    pid = os.getpid()
    # after multiprocessing's own exit handlers (its pymp-* folders, exitpriority -100), which live in here
    Finalize(None, lambda: shutil.rmtree(d, ignore_errors=True) if os.getpid() == pid else None, exitpriority=-101)
    os.environ["TMPDIR"] = str(d)
    tempfile.tempdir = str(d)
    return d
