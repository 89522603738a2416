"""PACE's distillation loop: synthetic event frames matched to real ones on the features of probe SNNs.

Our reading of the paper (arXiv 2511.12095; ../shared/ALGORITHMS.md), with every inferred choice an option of
``DistillConfig``:

- Synthetic set: logits ``Z`` (classes x IPC, T, 2, H, W) of event probabilities ``p = sigmoid(Z)``, started
  from real frames of each class (clipped to [eps, 1 - eps]) and optimised with Adam under a cosine schedule.
  The probe networks see ``PEQ-1(p)``, binary event frames whose expectation is ``p``, with a straight-through
  gradient (``distill.peq=false``: ``p`` itself, the continuous relaxation). The stored set is ``p > 1/2``; in
  the last ``distill.round_steps`` steps the probes see that rounding (straight-through gradient).
- Probes: ``distill.probes`` frozen SNNs of the run's architecture. ``pool=random``: fresh initialisations, as
  distribution matching uses (Zhao & Bilen 2023); ``trained``: teachers trained on real frames, each blended with
  its start ``(1 - a) init + a final`` for a random a; ``mixed``: half each. The real side of every term (class
  means, characteristic functions, DFTs) is computed once per probe over every real sample of the class
  (``distill.batch_real`` caps it), so each step runs only the synthetic frames.
- Features: every hidden layer over all time steps (``distill.layers``), as SDR features
  ``s + k (v / theta - s)``, divided by the spread of the real features (rms distance of the time-averaged
  features to their mean) so that every layer and term is scale-free.
- Loss per class and layer: the characteristic-function distance (amplitude + phase) between the time-averaged
  real and synthetic features at ``distill.freqs`` random frequencies w ~ N(0, freq_scale^2 I), plus
  ``temporal`` times the DFT amplitude/phase distance of the class-mean feature sequences.
- Baselines on the same loop, probes and layers: ``cf`` (spatial CF term on spikes: no SDR, no temporal term) and
  ``dm`` (distribution matching: squared distance of the mean spike features).

The loop checkpoints every ``checkpoint_every`` steps (logits, optimiser, random states) and a new call with the
same configuration resumes from the last checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import distributed as dist
from tqdm import tqdm

from models.snn import SNN
from pipeline import ranks
from pipeline.architecture import build_model
from pipeline.config import ConfigError, RunConfig, SelectConfig
from pipeline.distill import checkpoint as checkpoints
from pipeline.distill.matching import (
    Frequencies,
    RealStats,
    amplitude_phase,
    characteristic,
    features,
    real_stats,
)
from pipeline.distill.peq import peq
from pipeline.train import loop

OPTIMISED = ("pace", "cf", "dm")
Weights = list[torch.Tensor]


@dataclass(frozen=True)
class Teacher:
    init: Weights
    final: Weights


def needs_teachers(cfg: RunConfig) -> bool:
    """Whether the method trains a teacher pool: trained or mixed probes, or the herding/k-center embedding."""
    x = cfg.distill
    return x.method in ("herding", "kcenter") or (x.method in OPTIMISED and x.pool != "random")


def train_teachers(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int) -> list[Teacher]:
    """The frozen teacher pool: SNNs of the run's architecture trained on real frames, seeds distill.seed * 1000 + k."""
    x = cfg.distill
    pool = []
    for k in range(x.teachers):
        tcfg = replace(cfg, train=replace(cfg.train, epochs=x.teacher_epochs, seed=x.seed * 1000 + k),
                       select=SelectConfig())
        idx = np.arange(len(labels))
        if x.teacher_samples and x.teacher_samples < len(labels):
            idx = np.sort(np.random.default_rng([x.seed, k]).permutation(len(labels))[:x.teacher_samples])
        init = [w.detach().clone() for w in build_model(tcfg, frames.shape[2:], n_classes).weights]
        print(f"teacher {k + 1}/{x.teachers}: {len(idx)} real samples, {x.teacher_epochs} epochs", flush=True)
        result = loop.train(tcfg, frames[idx], labels[idx], n_classes)
        pool.append(Teacher(init, [w.detach().clone() for w in result.model.weights]))
    return pool


def teacher_model(cfg: RunConfig, frame_shape: tuple[int, ...], n_classes: int) -> SNN:
    model = build_model(cfg, frame_shape, n_classes)
    model.requires_grad_(False)
    return model


def load_teacher(model: SNN, teacher: Teacher, a: float) -> None:
    with torch.no_grad():
        for w, w0, w1 in zip(model.weights, teacher.init, teacher.final):
            w.copy_((1 - a) * w0 + a * w1)


def matched_layers(cfg: RunConfig, depth: int) -> list[int]:
    spec = cfg.distill.layers
    if spec == "hidden":
        return list(range(depth - 1))
    if spec == "all":
        return list(range(depth))
    layers = sorted({int(v) for v in spec.split(",")})
    if layers[-1] >= depth:
        raise ConfigError(f"config distill.layers = {spec!r}: the model has layers 0..{depth - 1}")
    return layers


def effective(cfg: RunConfig) -> tuple[float, float]:
    """(sdr_k, temporal weight) the method uses: CF and DM baselines match spikes without the temporal term."""
    x = cfg.distill
    return (x.sdr_k, x.temporal) if x.method == "pace" else (0.0, 0.0)


def matching_loss(method: str, real: RealStats, c: int, synth: torch.Tensor, temporal: float) -> torch.Tensor:
    """Loss between class ``c``'s real statistics and its synthetic features (B_s, n, D), in units of the spread."""
    f = synth / real.spread
    if method == "dm":
        return ((real.mean[c] - f.mean(dim=(0, 1))) ** 2).sum()
    loss = amplitude_phase(real.cf[c], characteristic(f.mean(dim=1), real.freqs))
    if temporal:
        loss = loss + temporal * amplitude_phase(real.dft[c], torch.fft.rfft(f.mean(dim=0), dim=0))
    return loss


def init_indices(labels: np.ndarray, n_classes: int, ipc: int, rng: np.random.Generator) -> np.ndarray:
    """``ipc`` random real samples of each class, class by class (fewer if a class has fewer)."""
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:ipc] for c in range(n_classes)])


def config_key(cfg: RunConfig) -> str:
    """What a checkpoint must match to be resumed: data, model, training and distillation settings."""
    d = cfg.to_dict()
    blob = json.dumps({k: d[k] for k in ("data", "model", "train", "distill")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Result:
    frames: np.ndarray            # (classes x ipc, T, 2, H, W) uint8, binary: the stored set
    labels: np.ndarray
    history: list[float]          # loss per step
    seconds: float                # optimisation time (this call plus resumed ones), probe statistics included
    resumed_from: int             # step the run resumed from (0 = fresh)
    probabilities: np.ndarray | None = None   # (classes x ipc, T, 2, H, W) float32: the continuous set
    grad_norms: list[float] | None = None     # norm of the gradient on the logits, per step


def probe_weights(cfg: RunConfig, frame_shape: tuple[int, ...], n_classes: int,
                  pool: list[Teacher] | None) -> list[Weights]:
    """The probes' weights: fresh initialisations and/or blended teachers, as ``distill.pool`` says."""
    x = cfg.distill
    rng = np.random.default_rng([x.seed, 29])
    n_trained = {"random": 0, "trained": x.probes, "mixed": x.probes // 2}[x.pool]
    out = []
    for k in range(x.probes):
        model = build_model(replace(cfg, train=replace(cfg.train, seed=10_000 + 1000 * x.seed + k)),
                                  frame_shape, n_classes)
        if k < n_trained:
            load_teacher(model, pool[k % len(pool)], float(rng.random()))
        out.append([w.detach().clone() for w in model.weights])
    return out


@dataclass
class _Probes:
    """The probe networks and the real statistics of each: a deterministic function of the configuration (a
    resumed run computes them again rather than storing them)."""
    model: SNN                    # one network; each probe's weights are loaded into it in turn
    layers: list[int]
    weights: list[Weights]
    stats: list[list[RealStats]]  # per probe, per matched layer


def _probes(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
            pool: list[Teacher] | None) -> _Probes:
    x = cfg.distill
    model = teacher_model(cfg, frames.shape[2:], n_classes)
    layers = matched_layers(cfg, model.depth)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    if x.batch_real:
        cap = np.random.default_rng([x.seed, 31])
        by_class = [np.sort(cap.permutation(ix)[:x.batch_real]) for ix in by_class]
    weights, stats = probe_weights(cfg, frames.shape[2:], n_classes, pool), []
    freqs = Frequencies(x.freqs, x.freq_scale, torch.Generator().manual_seed(1000 + x.seed))
    for w in tqdm(weights, desc="probe statistics", unit="probe", disable=None if ranks.rank_world()[0] == 0 else True):
        load_teacher(model, Teacher(w, w), 1.0)
        stats.append(real_stats(model, frames, by_class, layers, effective(cfg)[0], freqs))
    return _Probes(model, layers, weights, stats)


def optimise(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
             pool: list[Teacher] | None = None, checkpoint: Path | None = None,
             on_step: Callable[[int, float], None] | None = None) -> Result:
    """Optimise the synthetic frames of ``cfg.distill.method`` (pace, cf or dm) against real ``frames``.

    Under torchrun the classes are split across ranks (class c on rank c % world): the loss is a sum over
    classes and each class's frames depend only on its own term. Every rank draws the same random numbers and
    computes the same probe statistics; the frames are gathered at the end."""
    x = cfg.distill
    rank, world = ranks.rank_world()
    rng = np.random.default_rng([x.seed, 17])          # the start's draw, then the probe of each step
    idx = init_indices(labels, n_classes, x.ipc, rng)
    syn_labels = labels[idx]
    start = np.clip(np.minimum(frames[idx], 1).astype(np.float32), x.init_eps, 1 - x.init_eps)
    state = checkpoints.OptimiserState(start, x.lr, x.iterations, rng, torch.Generator().manual_seed(x.seed))
    key = config_key(cfg) + f"-world{world}"
    if checkpoint is not None and world > 1:
        checkpoint = checkpoint.with_name(f"{checkpoint.name}.rank{rank}")
    resume = checkpoints.load(checkpoint, key) if checkpoint is not None else None
    t0 = time.perf_counter()
    probes = _probes(cfg, frames, labels, n_classes, pool)
    if resume is not None:
        state.restore(resume)
        print(f"resuming distillation from step {state.step} ({checkpoint})", flush=True)
    else:
        state.seconds = time.perf_counter() - t0
    start_step = state.step
    syn_by_class = [np.flatnonzero(syn_labels == c) for c in range(n_classes)]
    mine = [c for c in range(n_classes) if c % world == rank]
    t0 = time.perf_counter()
    bar = tqdm(range(start_step, x.iterations), desc=f"distilling ({x.method}, IPC {x.ipc})", unit="step",
               initial=start_step, total=x.iterations, disable=None if rank == 0 else True)
    for step in bar:
        _step(cfg, state, probes, [syn_by_class[c] for c in mine], mine, step)
        bar.set_postfix(loss=f"{state.history[-1]:.4f}")
        if checkpoint is not None and ((step + 1) % x.checkpoint_every == 0 or step + 1 == x.iterations):
            state.save(checkpoint, key, step + 1, state.seconds + time.perf_counter() - t0)
        if on_step is not None:
            on_step(step + 1, state.history[-1])
    state.seconds += time.perf_counter() - t0
    return _result(cfg, state, syn_labels, [syn_by_class[c] for c in mine], start_step)


def _step(cfg: RunConfig, state: checkpoints.OptimiserState, probes: _Probes, my_classes: list[np.ndarray],
          mine: list[int], step: int) -> None:
    """One optimisation step on a probe drawn at random: this rank's classes' matching loss, backward, Adam."""
    x, n_classes = cfg.distill, len(probes.stats[0][0].mean)
    sdr_k, temporal = effective(cfg)
    k = int(state.rng.integers(len(probes.weights)))
    load_teacher(probes.model, Teacher(probes.weights[k], probes.weights[k]), 1.0)
    p = torch.sigmoid(state.z)
    if step >= x.iterations - x.round_steps:          # the stored set, with a straight-through gradient
        synth = p + ((p > 0.5).float() - p).detach()
    else:
        synth = peq(p, 1, state.gen) if x.peq else p
    my_rows = np.concatenate(my_classes) if my_classes else np.zeros(0, np.int64)
    f_syn = features(probes.model, synth[my_rows], sdr_k, True, probes.layers)
    loss, row = torch.zeros(()), 0
    for c, members in zip(mine, my_classes):
        rows, row = slice(row, row + len(members)), row + len(members)
        for real, f in zip(probes.stats[k], f_syn):
            loss = loss + matching_loss(x.method, real, c, f[rows], temporal)
    loss = loss / (n_classes * len(probes.layers))
    if not torch.isfinite(loss):        # a NaN set must not be rounded to zeros and stored as a result
        raise loop.TrainingError(f"distillation diverged at step {step + 1}/{x.iterations}: the matching "
                                  f"loss is {loss.item()}; lower distill.lr")
    state.opt.zero_grad()
    loss.backward()
    state.grads.append(float(state.z.grad.norm()))
    state.opt.step()
    state.sched.step()
    total = loss.detach().clone()
    if ranks.rank_world()[1] > 1:
        dist.all_reduce(total)
    state.history.append(total.item())


def _result(cfg: RunConfig, state: checkpoints.OptimiserState, syn_labels: np.ndarray, my_classes: list[np.ndarray],
            start_step: int) -> Result:
    """The frames gathered from every rank, stored as ``distill.binarize`` says."""
    z = state.z
    if ranks.rank_world()[1] > 1:
        my_rows = np.concatenate(my_classes) if my_classes else np.zeros(0, np.int64)
        parts = [None] * ranks.rank_world()[1]
        dist.all_gather_object(parts, (my_rows, z.detach()[my_rows]))
        with torch.no_grad():
            for rows, values in parts:
                z[rows] = values
    with torch.no_grad():
        p = torch.sigmoid(z)
        out = peq(p, 1, state.gen) if cfg.distill.binarize == "sample" else (p > 0.5).float()
    return Result(out.numpy().astype(np.uint8), syn_labels, state.history, state.seconds, start_step,
                  p.numpy().astype(np.float32), state.grads)
