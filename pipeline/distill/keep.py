"""The check that keeps distillation from handing back a set worse than where it started.

A distilled set is judged the way it will be used: a fresh SNN of the run's architecture and training settings is
trained only on it (``distill.check_steps`` optimiser steps at batch min(50, set size), learning rate
``distill.check_lr``, seed ``distill.seed``: the protocol of benchmarks/distillation.py) and scored on the
validation split, which no set ever contains. Every check trains from the same initialisation and batch order, so
two sets are compared without the noise of different seeds. ``pace.optimise`` runs it on the start and every
``distill.check_every`` steps and keeps the best set.
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import replace

import numpy as np

from pipeline.config import RunConfig, SelectConfig
from pipeline.train import loop

BATCH = 50


def protocol(cfg: RunConfig, samples: int, steps: int, lr: float, seed: int) -> RunConfig:
    """``cfg`` set to train on a set of ``samples`` for ``steps`` optimiser steps at batch min(50, samples), full
    data (no pruning), learning rate ``lr``, seed ``seed``."""
    batch = min(BATCH, samples)
    epochs = max(1, math.ceil(steps / math.ceil(samples / batch)))
    return replace(cfg, train=replace(cfg.train, epochs=epochs, batch_size=batch, lr=lr, seed=seed),
                   select=SelectConfig())


def judge(cfg: RunConfig, val_frames: np.ndarray, val_labels: np.ndarray, n_classes: int):
    """(frames, labels) -> float validation accuracy of a fresh SNN trained on them by the check protocol."""
    x = cfg.distill

    def score(frames: np.ndarray, labels: np.ndarray) -> float:
        tcfg = protocol(cfg, len(labels), x.check_steps, x.check_lr, x.seed)
        with contextlib.redirect_stdout(io.StringIO()):         # one line per epoch: the check prints its own
            result = loop.train(tcfg, frames, labels, n_classes)
        return loop.accuracy(result.model, val_frames, val_labels)

    return score
