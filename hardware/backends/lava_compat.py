"""Import-time compatibility layer that lets lava-nc 0.10.0 and lava-dl 0.6.0 run on Python 3.11.

Both wheels declare Python < 3.11. Two things break on 3.11, and this module fixes both at import time,
without editing installed files and without copying Lava's code:

1. ``lava.magma.compiler.var_model`` uses ``ByteEncoder()`` (a mutable dataclass instance) as a field default.
   Python 3.11 rejects any unhashable default. We execute that one module with ``dataclasses.dataclass``
   temporarily wrapped so that the class named ``ByteEncoder`` is built with ``unsafe_hash=True``.
2. ``lava.lib.dl.slayer/__init__`` eagerly imports cv2 and torchvision (neither is installable here with the
   pinned CPU torch). We load that package as an empty package whose submodules import on demand.

Call :func:`install` before the first ``import lava``; it is idempotent. Lava forks its worker processes, so
the hook is inherited by them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import multiprocessing
import sys
from typing import Iterator

_VAR_MODEL = "lava.magma.compiler.var_model"
_SLAYER = "lava.lib.dl.slayer"


@contextlib.contextmanager
def _hashable_byte_encoder() -> Iterator[None]:
    """Temporarily make ``@dataclass`` build ``ByteEncoder`` as a hashable class."""
    original = dataclasses.dataclass

    def dataclass(cls=None, /, **kwargs):
        def wrap(c):
            if c.__name__ == "ByteEncoder" and c.__module__ == _VAR_MODEL:
                kwargs["unsafe_hash"] = True
            return original(c, **kwargs)

        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = dataclass
    try:
        yield
    finally:
        dataclasses.dataclass = original


class _VarModelLoader(importlib.machinery.SourceFileLoader):
    def exec_module(self, module) -> None:
        with _hashable_byte_encoder():
            super().exec_module(module)


class _LazyPackageLoader(importlib.abc.Loader):
    """Create a package with the real ``__path__`` but without running its ``__init__``."""

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        pass


class _LavaFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in (_VAR_MODEL, _SLAYER):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        if name == _VAR_MODEL:
            spec.loader = _VarModelLoader(name, spec.origin)
        else:
            spec.loader = _LazyPackageLoader()
        return spec


def install() -> None:
    """Put the finder in front of the import system (once) and let Lava set its start method."""
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules:
        multiprocessing.set_start_method(None, force=True)
    if not any(isinstance(f, _LavaFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaFinder())
