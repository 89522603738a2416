"""Spike-level comparison of a backend against the golden model: per layer, per step, per sample."""
from __future__ import annotations

import numpy as np


def compare(golden: list[np.ndarray], other: list[np.ndarray], layer_names: list[str]) -> dict:
    """Compare per-layer spike rasters (B, n_steps, N_l) after delay alignment (both use model steps).

    ``identical`` counts samples whose spikes match in every layer and step; ``first_divergence`` is the
    earliest (sample, step, layer, neuron) that differs, or None.
    """
    if len(golden) != len(other):
        raise ValueError(f"golden has {len(golden)} layers, backend {len(other)}")
    B = golden[0].shape[0]
    same = np.ones(B, dtype=bool)
    first, layers = None, {}
    for name, g, o in zip(layer_names, golden, other):
        if g.shape != o.shape:
            raise ValueError(f"layer {name}: golden spikes {g.shape} vs backend {o.shape}")
        diff = g != o
        same &= ~diff.reshape(B, -1).any(axis=1)
        layers[name] = {"golden_spikes": int(g.sum()), "backend_spikes": int(o.sum()),
                        "mismatched": int(diff.sum()), "mismatched_per_step": diff.sum(axis=(0, 2)).tolist()}
        where = np.argwhere(diff)
        if len(where):
            b, t, k = (int(v) for v in where[np.lexsort((where[:, 1], where[:, 0]))[0]])
            cand = {"sample": b, "step": t, "layer": name, "neuron": k}
            if first is None or (b, t) < (first["sample"], first["step"]):
                first = cand
    return {"compared": int(B), "identical": int(same.sum()), "first_divergence": first, "layers": layers}
