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


def silent_layers(layers: list[dict], samples: int, hint: str = "") -> list[dict]:
    """The layers that stayed silent over every compared sample, each with the likely cause where it is knowable.

    ``layers``: in order from the input, each ``{"layer", "spikes", "sources", "peak_fraction", "spiking"}``:
    spikes emitted over all samples, the layers (or ``"input"``) it receives spikes from with their spike
    counts, the highest membrane voltage reached as a fraction of the threshold, and whether it spikes at all
    (a non-spiking readout is silent when no spike reaches it). ``hint`` is appended where the input reached the
    layer but no neuron crossed its threshold (e.g. the discretisation a foreign graph was read with)."""
    out = []
    for L in layers:
        received = sum(L["sources"].values())
        silent = L["spikes"] == 0 if L["spiking"] else received == 0
        if not silent:
            continue
        if received == 0:
            quiet = [k for k, n in L["sources"].items() if n == 0]
            cause = ("no spike reaches it: " + ", ".join("the input has no spikes" if k == "input" else
                                                          f"{k} is silent" for k in quiet))
        elif L.get("peak_fraction") is not None:
            cause = (f"{received:,} input spikes reached it, but no neuron crossed its threshold: the highest "
                     f"voltage was {100 * L['peak_fraction']:.1f}% of the threshold" + (f"; {hint}" if hint else ""))
        else:
            cause = f"{received:,} input spikes reached it, but no neuron crossed its threshold"
        out.append({"layer": L["layer"], "samples": int(samples), "cause": cause})
    return out
