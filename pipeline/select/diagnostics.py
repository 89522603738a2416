"""The mechanism checks of SADP (../shared/ALGORITHMS.md): does the spike-aware score rank per-example gradient
norms, and is the weighted estimator unbiased with less variance than uniform sampling? Measured by
``benchmarks/sadp_score.py`` (results in benchmarks/results/sadp_score.*) and checked by tests/test_selection.py.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from torch.nn import functional as F

from pipeline.config import SelectConfig
from pipeline.select import plans
from pipeline.select.scores import example_scores


def per_example(model, frames: np.ndarray, labels: np.ndarray, slope: float) -> tuple[np.ndarray, dict]:
    """(per-example gradients (N, P) of the rate-decoded cross-entropy, one backward each (torch.func cannot
    transform snnTorch 1.0's FastSigmoid: it has no setup_context), and every score kind per example)."""
    x, y = torch.from_numpy(frames), torch.from_numpy(labels)
    grads = []
    for i in range(len(y)):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]).spikes[-1].sum(dim=1), y[i:i + 1]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]).numpy().copy())
    with torch.no_grad():
        out = model(x)
    scores = example_scores(out.spikes[-1].sum(dim=1), out.drive[-1], out.spikes[-2].sum(dim=2), y, slope)
    return np.array(grads), {k: v.numpy().astype(np.float64) for k, v in scores.items()}


def rank_correlations(grads: np.ndarray, scores: dict) -> dict[str, float]:
    """Spearman rank correlation of each score with the per-example gradient norms."""
    norms = np.linalg.norm(grads, axis=1)
    return {k: float(spearmanr(v, norms).statistic) for k, v in scores.items()}


def _draw_weights(method: str, scores: dict, draws: int, ratio: float) -> np.ndarray:
    """Each draw as a weight vector over all N examples: its estimate of the mean gradient is w @ grads."""
    cfg = SelectConfig(method=method, ratio=ratio, warmup_epochs=0, anneal_from=1.0)
    rng, n = np.random.default_rng(1), len(scores["loss"])
    out = np.zeros((draws, n))
    for d in range(draws):
        p = plans.plan_epoch(cfg, 0, 10, scores, rng)
        np.add.at(out[d], p.indices, p.weights / len(p.indices))
    return out


def estimator_moments(grads: np.ndarray, scores: dict, draws: int = 400, ratio: float = 0.5) -> dict:
    """Cosine of the mean SADP estimate with the full-batch gradient, and the variance of SADP's and uniform
    sampling's estimates at the same budget; moments in example space with the Gram matrix K = G G^T (exact)."""
    K = grads @ grads.T
    u = np.full(len(grads), 1 / len(grads))                   # the full-batch mean gradient is u @ grads
    sadp, uniform = (_draw_weights(m, scores, draws, ratio) for m in ("sadp", "dynamic_random"))
    w = sadp.mean(axis=0)
    cosine = float((w @ K @ u) / np.sqrt((w @ K @ w) * (u @ K @ u)))
    var = {name: float(np.einsum("dn,nm,dm->d", W - u, K, W - u).mean()) for name, W in (("sadp", sadp),
                                                                                      ("uniform", uniform))}
    return {"cosine": cosine, "variance_sadp": var["sadp"], "variance_uniform": var["uniform"],
            "variance_ratio_uniform_over_sadp": var["uniform"] / var["sadp"]}


def plan_weights(scores: dict, ratio: float, variants: dict[str, dict], draws: int = 20) -> dict[str, dict]:
    """How concentrated each selection's loss weights are, on the same scores: for each variant (SelectConfig
    fields, e.g. ``{"method": "sadp", "mix": 0.5}``) a pruned epoch drawn ``draws`` times at ``ratio``; the mean over
    draws of the largest weight, of the share of kept examples weighted above 2, and of Kish's effective sample
    size as a share of the kept examples, ``(sum w)^2 / (|S| sum w^2)`` (1: equal weights; the smaller, the more a
    few heavily weighted examples dominate the epoch's gradient)."""
    out = {}
    for name, fields in variants.items():
        cfg = SelectConfig(**{**fields, "ratio": ratio, "warmup_epochs": 0, "anneal_from": 1.0})
        rng, stats = np.random.default_rng(0), []
        for _ in range(draws):
            w = plans.plan_epoch(cfg, 0, 1, scores, rng).weights
            stats.append((w.max(), (w > 2).mean(), w.sum() ** 2 / (len(w) * (w ** 2).sum())))
        out[name] = dict(zip(("max", "above_2", "ess"), np.mean(stats, axis=0).round(4).tolist()))
    return out
