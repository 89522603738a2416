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


def training_curve(path: Path, losses, val_accuracy=(), deployed: float | None = None, val_epochs=()) -> None:
    """Loss per epoch; with ``val_accuracy`` (after ``val_epochs``, 1-based; default every epoch), the float
    model's validation accuracy on a second axis and the deployed integer model's final test accuracy as a
    marker."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, marker="o", ms=3, color="tab:blue")
    ax.set(xlabel="epoch", title="training")
    ax.set_ylabel("training loss (CE on spike counts)", color="tab:blue")
    if len(val_accuracy):
        acc = ax.twinx()
        acc.plot(list(val_epochs) or epochs[:len(val_accuracy)], val_accuracy, marker="s", ms=3,
                 color="tab:green", label="validation (float QAT forward)")
        if deployed is not None:
            acc.scatter([len(losses)], [deployed], marker="*", s=120, color="tab:red", zorder=5,
                        label=f"test, deployed integer {deployed:.4f}")
        acc.set_ylabel("accuracy", color="tab:green")
        acc.legend(loc="lower right", fontsize=7)
    _save(fig, path)


def delay_histograms(path: Path, delays: dict) -> None:
    """The learnt delays per layer (``models.delays.learnt``): how many synapses (or input neurons) hold each."""
    rows = delays["layers"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3), squeeze=False)
    for ax, row in zip(axes[0], rows):
        ax.bar(np.arange(len(row["histogram"])), row["histogram"], color="tab:purple")
        ax.set(xlabel="delay beyond the synapse's own step", ylabel=f"{delays['kind']}s",
               title=f"{row['layer']}: mean {row['mean']:.1f} steps")
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


def distill_loss(path: Path, history) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(history) + 1), history)
    ax.set(xlabel="step", ylabel="matching loss (mean over classes)", title="distillation")
    _save(fig, path)


def event_frames(path: Path, frames: np.ndarray, labels: np.ndarray, classes, per_class: int = 4) -> None:
    """A grid of samples (rows: classes): ON minus OFF events summed over time, red ON, blue OFF."""
    cols = min(per_class, int(np.bincount(labels).max()))
    fig, axes = plt.subplots(len(classes), cols, figsize=(1.2 * cols, 1.2 * len(classes)), squeeze=False)
    for c, row in enumerate(axes):
        ix = np.flatnonzero(labels == c)[:cols]
        for j, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(ix):
                img = frames[ix[j]].astype(np.int32).sum(axis=0)
                lim = max(1, int(np.abs(img[1] - img[0]).max()))
                ax.imshow(img[1] - img[0], cmap="bwr", vmin=-lim, vmax=lim)
            if j == 0:
                ax.set_ylabel(str(classes[c]), rotation=0, labelpad=12)
    fig.suptitle("samples per class (ON - OFF events over time)", fontsize=9)
    _save(fig, path)


def divergence(path: Path, per_backend: dict, names: list[str], sample_steps: int | None = None) -> None:
    """Heat map per backend: mismatched spikes (summed over samples and neurons) per layer and time step; a dashed
    line marks the end of the samples' own steps (later steps: their tails)."""
    fig, axes = plt.subplots(1, max(1, len(per_backend)), figsize=(4.5 * max(1, len(per_backend)), 2.2),
                             squeeze=False)
    for ax, (backend, rows) in zip(axes[0], per_backend.items()):
        data = np.array(rows, dtype=float)
        im = ax.imshow(data, aspect="auto", cmap="Reds", vmin=0, vmax=max(1.0, data.max()))
        if sample_steps is not None and data.shape[1] > sample_steps:
            ax.axvline(sample_steps - 0.5, color="k", ls="--", lw=0.8)
        ax.set(yticks=range(len(names)), yticklabels=names, xlabel="time step",
               title=f"{backend}: {int(data.sum())} mismatched spikes")
        fig.colorbar(im, ax=ax)
    _save(fig, path)


PANELS = ("float graph", "integer reference", "Lava fixed_pt")


def rasters3(path: Path, panels: list[list[np.ndarray]], names: list[str], voltages: dict | None = None,
             sample: int = 0, titles: tuple[str, ...] = PANELS) -> None:
    """Per layer (rows), side by side: the float graph, the integer reference and (when run) Lava for one sample,
    each panel after the first with its differences from the one before it in red. Non-spiking layers in
    ``voltages`` (name -> one voltage array per panel) are drawn as traces."""
    voltages = voltages or {}
    titles = titles[:len(panels)]
    fig, axes = plt.subplots(len(names), len(panels), figsize=(4.4 * len(panels), 2.6 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        if name in voltages:
            for col, (title, v) in enumerate(zip(titles, voltages[name])):
                ax = axes[row][col]
                ax.plot(v[sample], lw=0.8)
                ax.set(title=f"{name}: {title}, membrane voltage", ylabel="v" if col == 0 else None,
                       xlabel="time step" if row == len(names) - 1 else None)
                ax.title.set_fontsize(8)
            continue
        for col, title in enumerate(titles):
            ax, s = axes[row][col], panels[col][row]
            t, n = np.nonzero(s[sample])
            ax.scatter(t, n, s=5, c="k")
            if col > 0:
                bt, bn = np.nonzero(s[sample] != panels[col - 1][row][sample])
                ax.scatter(bt, bn, s=30, c="red", marker="x")
                title += f" ({len(bt)} differ from the {titles[col - 1]})"
            ax.set(xlim=(-0.5, s.shape[1] - 0.5), ylim=(-0.5, s.shape[2] - 0.5), title=f"{name}: {title}",
                   xlabel="time step" if row == len(names) - 1 else None, ylabel="neuron" if col == 0 else None)
            ax.title.set_fontsize(8)
    _save(fig, path)


def confusion(path: Path, matrix: np.ndarray, classes, title: str) -> None:
    """A confusion matrix: rows the true class, columns the predicted one (and a last column of undecided samples
    when the matrix has one more column than rows), counts written in the cells."""
    n, m = matrix.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.42 * m, 1.0 + 0.42 * n))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), c in np.ndenumerate(matrix):
        if c:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=7,
                    color="white" if c > matrix.max() / 2 else "black")
    labels = [str(c)[:10] for c in classes]
    ax.set_xticks(range(m), labels + ["undecided"] * (m - n), rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    ax.title.set_fontsize(8)
    _save(fig, path)
