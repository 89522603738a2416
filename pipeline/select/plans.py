"""Which examples an epoch trains on, and with what loss weight, for each selection method.

Every method shares one schedule: warm-up epochs and the annealing tail use all data (InfoBatch-style), the
epochs between are pruned at ``ratio`` (the fraction of examples skipped). ``static_random`` is the exception:
one fixed subset for the whole run, as a static coreset would be.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.config import SelectConfig
from pipeline.select.sampling import poisson, systematic, water_fill, with_replacement


@dataclass(frozen=True)
class EpochPlan:
    indices: np.ndarray     # examples to train on, in training order
    weights: np.ndarray     # loss weight of each (1 for unweighted methods)
    pruned: bool


SCORE_KIND = {"sadp": "spike", "el2n": "el2n", "loss": "loss", "infobatch": "loss", "infobatch_matched": "loss"}


def is_pruned_epoch(cfg: SelectConfig, epoch: int, n_epochs: int) -> bool:
    return cfg.method != "full" and cfg.warmup_epochs <= epoch < math.ceil(cfg.anneal_from * n_epochs)


def _full(n: int, rng) -> EpochPlan:
    return EpochPlan(rng.permutation(n), np.ones(n), False)


def _shuffled(idx: np.ndarray, w: np.ndarray, rng) -> EpochPlan:
    order = rng.permutation(len(idx))
    return EpochPlan(idx[order], w[order], True)


def _budget(cfg: SelectConfig, n: int) -> int:
    return max(1, int(round((1 - cfg.ratio) * n)))


def _importance(cfg: SelectConfig, scores: np.ndarray, rng) -> EpochPlan:
    n = len(scores)
    q = (1 - cfg.mix) * scores / max(scores.sum(), 1e-12) + cfg.mix / n
    if cfg.sampling == "replacement":
        idx, w = with_replacement(q, _budget(cfg, n), rng)
        return _shuffled(idx, w, rng)
    pi = water_fill(q, _budget(cfg, n))
    idx = systematic(pi, rng) if cfg.sampling == "systematic" else poisson(pi, rng)
    return _shuffled(idx, (len(idx) / n) / pi[idx], rng)


def _dynamic_random(cfg: SelectConfig, n: int, rng) -> EpochPlan:
    idx = np.sort(rng.permutation(n)[:_budget(cfg, n)])
    return _shuffled(idx, np.ones(len(idx)), rng)


def _drop_below_mean(losses: np.ndarray, low: np.ndarray, n_drop: int, weight: float, rng) -> EpochPlan:
    """Drop ``n_drop`` random examples of ``low`` (those below the mean loss); the kept ones of ``low`` get
    loss weight ``weight``, the rest 1."""
    dropped = rng.permutation(low)[:n_drop]
    keep = np.setdiff1d(np.arange(len(losses)), dropped)
    return _shuffled(keep, np.where(np.isin(keep, low), weight, 1.0), rng)


def _infobatch(cfg: SelectConfig, losses: np.ndarray, rng) -> EpochPlan:
    """Keep every example at or above the mean loss; drop a fraction ``ratio`` of the rest, rescale by 1/(1-r)."""
    low = np.nonzero(losses < losses.mean())[0]
    return _drop_below_mean(losses, low, int(round(cfg.ratio * len(low))), 1.0 / (1.0 - cfg.ratio), rng)


def _infobatch_matched(cfg: SelectConfig, losses: np.ndarray, rng) -> EpochPlan:
    """InfoBatch at the work of the fixed-size methods: drop ``round(ratio * N)`` examples, all from below the
    mean loss (every one of those but one when there are fewer), and rescale the kept below-mean ones by
    ``|low| / (|low| - dropped)``: InfoBatch with its ratio set per epoch to ``ratio * N / |low|``."""
    low = np.nonzero(losses < losses.mean())[0]
    n_drop = min(int(round(cfg.ratio * len(losses))), max(len(low) - 1, 0))
    return _drop_below_mean(losses, low, n_drop, len(low) / max(len(low) - n_drop, 1), rng)


def static_subset(cfg: SelectConfig, n: int) -> np.ndarray:
    return np.sort(np.random.default_rng([cfg.seed, 7]).permutation(n)[:_budget(cfg, n)])


# Pruned-epoch planners by method: (config, smoothed scores by kind, rng) -> plan.
PRUNED = {
    "dynamic_random": lambda cfg, s, rng: _dynamic_random(cfg, len(s["loss"]), rng),
    "infobatch": lambda cfg, s, rng: _infobatch(cfg, s["loss"], rng),
    "infobatch_matched": lambda cfg, s, rng: _infobatch_matched(cfg, s["loss"], rng),
    **{m: (lambda cfg, s, rng, kind=kind: _importance(cfg, s[kind], rng))
       for m, kind in SCORE_KIND.items() if not m.startswith("infobatch")},
}
METHODS = ("full", "static_random") + tuple(PRUNED)


def plan_epoch(cfg: SelectConfig, epoch: int, n_epochs: int, scores: dict[str, np.ndarray],
               rng: np.random.Generator) -> EpochPlan:
    """The epoch's examples and weights; ``scores`` holds the smoothed scores by kind (length N each)."""
    n = len(scores["loss"])
    if cfg.method == "static_random":
        idx = static_subset(cfg, n)
        return _shuffled(idx, np.ones(len(idx)), rng)
    if not is_pruned_epoch(cfg, epoch, n_epochs):
        return _full(n, rng)
    return PRUNED[cfg.method](cfg, scores, rng)
