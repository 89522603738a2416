"""Inclusion probabilities and draws for importance-sampled data selection.

``pi = water_fill(q, budget)`` gives ``pi_i = min(1, c q_i)`` with ``sum(pi) = budget``; a draw keeps example i
with probability pi_i, and weighting its loss by ``(|S| / N) / pi_i`` keeps the epoch's gradient unbiased:
E[sum_{i in S} w_i g_i] / |S| = mean_i g_i.
"""
from __future__ import annotations

import numpy as np


def water_fill(q: np.ndarray, budget: float) -> np.ndarray:
    """``min(1, c q)`` with c chosen so that the probabilities sum to ``budget`` (0 < budget <= len(q))."""
    q = np.maximum(np.asarray(q, float), 1e-12)
    capped = np.zeros(len(q), bool)
    while True:
        c = (budget - capped.sum()) / q[~capped].sum()
        over = ~capped & (c * q >= 1)
        if not over.any():
            return np.where(capped, 1.0, c * q)
        capped |= over


def systematic(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fixed-size draw with inclusion probabilities exactly ``pi`` (systematic sampling in random order)."""
    order = rng.permutation(len(pi))
    cum = np.cumsum(pi[order])
    points = rng.random() + np.arange(int(np.ceil(cum[-1])))
    hit = np.searchsorted(cum, points[points < cum[-1]], side="right")
    return np.sort(order[hit])


def poisson(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Bernoulli(pi_i) draws: exact inclusion probabilities, random size."""
    return np.nonzero(rng.random(len(pi)) < pi)[0]


def with_replacement(q: np.ndarray, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """m i.i.d. draws from q (Hansen-Hurwitz): indices and weights 1 / (N q_i)."""
    q = np.asarray(q, float) / np.sum(q)
    idx = rng.choice(len(q), size=m, p=q)
    return idx, 1.0 / (len(q) * q[idx])
