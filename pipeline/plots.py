"""Pictures people would rather look at than read: training curve, spike rasters golden vs backend."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.runfolder import atomic_write  # noqa: E402


def _save(fig, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


def training_curve(path: Path, losses) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(losses) + 1), losses, marker="o")
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy on spike counts)", title="training")
    _save(fig, path)


def rasters(path: Path, golden: list[np.ndarray], other: list[np.ndarray], names: list[str], backend: str,
            sample: int = 0) -> None:
    """Per layer: golden spikes (dots), backend spikes (rings), mismatches in red, for one sample."""
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name, g, o in zip(axes[0], names, golden, other):
        gt, gn = np.nonzero(g[sample])
        ot, on = np.nonzero(o[sample])
        bt, bn = np.nonzero(g[sample] != o[sample])
        ax.scatter(gt, gn, s=6, c="k", label="golden")
        ax.scatter(ot, on, s=30, facecolors="none", edgecolors="tab:blue", linewidths=0.6, label=backend)
        ax.scatter(bt, bn, s=40, c="red", marker="x", label="mismatch")
        ax.set(xlabel="time step", ylabel="neuron", title=f"{name} (sample {sample})")
    axes[0][0].legend(loc="upper right", fontsize=7)
    _save(fig, path)
