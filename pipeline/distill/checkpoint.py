"""Resumable state of a distillation, kept beside its output folder: read back only if it is ours.

A checkpoint file sits next to a folder the user names, so anyone could have put a file there. It is written
with ``torch.save`` as plain data (tensors, numbers, strings, lists and dicts: what ``weights_only`` loading
accepts, so nothing in it can run code), carries our marker and the configuration it belongs to, and is read
with ``torch.load(weights_only=True)``. Anything else at that path (a pickle, random bytes, someone's file) is
refused with one line naming the file, and left as it is.
"""
from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import torch

from export.files import atomic_write
from pipeline.data.layout import DataError

MARKER = "nmpipe-distill-checkpoint/v1"
MAX_BYTES = 8 << 30


def save(path: Path, key: str, state: dict) -> None:
    atomic_write(path, lambda p: torch.save({"marker": MARKER, "key": key, **state}, p))


def load(path: Path, key: str) -> dict | None:
    """The state saved at ``path`` for configuration ``key``; None when there is none, or it is ours but for
    another configuration (then it is replaced by the next save). Anything not ours: :class:`DataError`."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
        raise DataError(f"{path}: not a distillation checkpoint of this tool (not a plain file of at most "
                        f"{MAX_BYTES:,} bytes); move it away to distil here")
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")     # plain data only: no code runs
    except Exception as e:          # a pickle with code, random bytes, a truncated file: refused alike
        raise DataError(f"{path}: not a distillation checkpoint of this tool ({type(e).__name__}); it was left "
                        "as it is: move it away to distil here") from None
    if not isinstance(saved, dict) or saved.get("marker") != MARKER:
        raise DataError(f"{path}: not a distillation checkpoint of this tool (no {MARKER!r} marker); it was left "
                        "as it is: move it away to distil here")
    if saved.get("key") != key:
        print(f"ignoring checkpoint {path}: it was written for another configuration", flush=True)
        return None
    return saved


class OptimiserState:
    """What a step changes and a checkpoint keeps: the logits, the optimiser and its schedule, the random states,
    the loss and gradient-norm history."""

    def __init__(self, start: np.ndarray, lr: float, iterations: int, rng: np.random.Generator,
                 gen: torch.Generator):
        self.rng, self.gen = rng, gen
        self.z = torch.logit(torch.from_numpy(start)).requires_grad_(True)     # logits of the event probabilities
        self.opt = torch.optim.Adam([self.z], lr=lr)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, max(iterations, 1))
        self.history, self.grads, self.step, self.seconds = [], [], 0, 0.0
        self.checks: list[list[float]] = []       # [step, validation accuracy] of each check of the stored set
        self.best: tuple[int, float, torch.Tensor] | None = None    # (step, accuracy, logits) of the best check

    def save(self, path: Path, key: str, step: int, elapsed: float) -> None:
        save(path, key, {"step": step, "z": self.z.detach().clone(), "opt": self.opt.state_dict(),
                         "sched": self.sched.state_dict(), "gen": self.gen.get_state(),
                         "rng": self.rng.bit_generator.state, "history": list(self.history),
                         "grads": list(self.grads), "seconds": elapsed, "checks": [list(c) for c in self.checks],
                         "best": None if self.best is None else {"step": self.best[0], "accuracy": self.best[1],
                                                                 "z": self.best[2]}})

    def restore(self, saved: dict) -> None:
        with torch.no_grad():
            self.z.copy_(saved["z"])
        self.opt.load_state_dict(saved["opt"])
        self.sched.load_state_dict(saved["sched"])
        self.gen.set_state(saved["gen"])
        self.rng.bit_generator.state = saved["rng"]
        self.history, self.grads, self.step, self.seconds = saved["history"], saved["grads"], saved["step"], \
            saved["seconds"]
        self.checks = saved.get("checks", [])
        best = saved.get("best")
        self.best = None if best is None else (best["step"], best["accuracy"], best["z"])
