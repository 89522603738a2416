"""Coreset baselines for distillation: a few real samples per class, chosen at random, by herding or by k-center.

Herding (Welling 2009; as used by Chen et al. and in iCaRL) greedily adds the sample that keeps the running mean
of the chosen features closest to the class mean. K-center (Sener & Savarese 2018) starts from the sample nearest
the class mean and repeatedly adds the sample farthest from everything chosen. Both work on the time-averaged
hidden spike rates of a trained teacher.
"""
from __future__ import annotations

import numpy as np
import torch

from models.snn import SNN

SELECTED = ("random", "herding", "kcenter")


def embed(model: SNN, frames: np.ndarray, batch: int = 250) -> np.ndarray:
    """Time-averaged hidden spike rates (N, D) of ``frames`` under ``model``."""
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(frames[i:i + batch])).spikes[0].mean(dim=1).numpy()
                               for i in range(0, len(frames), batch)])


def herding(f: np.ndarray, k: int) -> np.ndarray:
    mu, chosen, total = f.mean(axis=0), [], np.zeros(f.shape[1])
    available = np.ones(len(f), bool)
    for t in range(1, min(k, len(f)) + 1):
        gap = np.linalg.norm(mu - (total + f) / t, axis=1)
        gap[~available] = np.inf
        i = int(np.argmin(gap))
        chosen.append(i)
        available[i] = False
        total += f[i]
    return np.array(chosen, dtype=np.int64)


def kcenter(f: np.ndarray, k: int) -> np.ndarray:
    chosen = [int(np.argmin(np.linalg.norm(f - f.mean(axis=0), axis=1)))]
    dist = np.linalg.norm(f - f[chosen[0]], axis=1)
    for _ in range(min(k, len(f)) - 1):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(f - f[i], axis=1))
    return np.array(chosen, dtype=np.int64)


def select(method: str, labels: np.ndarray, n_classes: int, ipc: int, rng: np.random.Generator,
           emb: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``ipc`` real samples per class chosen by ``method`` (herding and kcenter need ``emb``)."""
    out = []
    for c in range(n_classes):
        ix = np.flatnonzero(labels == c)
        if method == "random":
            out.append(np.sort(rng.permutation(ix)[:ipc]))
        else:
            out.append(ix[(herding if method == "herding" else kcenter)(emb[ix], ipc)])
    return np.concatenate(out)
