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
from pipeline.architecture import build_model
from pipeline.train import loop, ranks
from pipeline.config import ConfigError, RunConfig, SelectConfig
from pipeline.distill import checkpoint as checkpoints
from pipeline.distill.matching import amplitude_phase, characteristic, sdr_features
from pipeline.distill.peq import peq

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


def features(model: SNN, x: torch.Tensor, sdr_k: float, keep_graph: bool, layers: list[int]) -> list[torch.Tensor]:
    """Features (B, n_steps, D) of ``layers``: SDR features, or spikes when ``sdr_k`` is 0."""
    out = model(x, detach_drive=not keep_graph)
    return [sdr_features(out.spikes[l], out.drive[l], sdr_k) if sdr_k else out.spikes[l] for l in layers]


def effective(cfg: RunConfig) -> tuple[float, float]:
    """(sdr_k, temporal weight) the method uses: CF and DM baselines match spikes without the temporal term."""
    x = cfg.distill
    return (x.sdr_k, x.temporal) if x.method == "pace" else (0.0, 0.0)


@dataclass
class RealStats:
    """The real side of every matching term for one probe and layer (features in units of ``spread``)."""
    spread: float
    freqs: torch.Tensor           # (F, D)
    mean: torch.Tensor            # (C, D) class means of the time-averaged features
    cf: torch.Tensor              # (C, F) complex: characteristic functions of the time-averaged features
    dft: torch.Tensor             # (C, K, D) complex: DFT over time of the class-mean feature sequence


def real_stats(model: SNN, frames: np.ndarray, by_class: list[np.ndarray], layers: list[int], sdr_k: float,
               n_freqs: int, freq_scale: float, gen: torch.Generator, batch: int = 250) -> list[RealStats]:
    """One pass of the real frames of every class through ``model``: per layer, the real statistics."""
    per_class = []
    with torch.no_grad():
        for ix in by_class:
            parts = [features(model, torch.from_numpy(frames[ix[i:i + batch]]), sdr_k, False, layers)
                     for i in range(0, len(ix), batch)]
            per_class.append([torch.cat(p) for p in zip(*parts)])       # per layer (B_c, n, D)
        out = []
        for l in range(len(layers)):
            avg = torch.cat([f[l].mean(dim=1) for f in per_class])
            spread = float((avg - avg.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt().clamp(min=1e-6))
            freqs = torch.randn(n_freqs, avg.shape[1], generator=gen) * freq_scale
            feats = [f[l] / spread for f in per_class]
            out.append(RealStats(spread, freqs, torch.stack([f.mean(dim=(0, 1)) for f in feats]),
                                 torch.stack([characteristic(f.mean(dim=1), freqs) for f in feats]),
                                 torch.stack([torch.fft.rfft(f.mean(dim=0), dim=0) for f in feats])))
    return out


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


def optimise(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
             pool: list[Teacher] | None = None, checkpoint: Path | None = None,
             on_step: Callable[[int, float], None] | None = None) -> Result:
    """Optimise the synthetic frames of ``cfg.distill.method`` (pace, cf or dm) against real ``frames``."""
    x = cfg.distill
    sdr_k, temporal = effective(cfg)
    rng = np.random.default_rng([x.seed, 17])
    gen = torch.Generator().manual_seed(x.seed)
    idx = init_indices(labels, n_classes, x.ipc, rng)
    syn_labels = labels[idx]
    start = np.clip(np.minimum(frames[idx], 1).astype(np.float32), x.init_eps, 1 - x.init_eps)
    z = torch.logit(torch.from_numpy(start)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=x.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(x.iterations, 1))
    history, grads, start_step, seconds = [], [], 0, 0.0
    key = config_key(cfg) + f"-world{ranks.rank_world()[1]}"
    if checkpoint is not None and ranks.rank_world()[1] > 1:
        checkpoint = checkpoint.with_name(f"{checkpoint.name}.rank{ranks.rank_world()[0]}")
    resume = checkpoints.load(checkpoint, key) if checkpoint is not None else None

    # The probes and their real statistics are a deterministic function of the configuration: a resumed run
    # computes them again rather than storing them.
    t0 = time.perf_counter()
    model = teacher_model(cfg, frames.shape[2:], n_classes)
    layers = matched_layers(cfg, model.depth)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    if x.batch_real:
        cap = np.random.default_rng([x.seed, 31])
        by_class = [np.sort(cap.permutation(ix)[:x.batch_real]) for ix in by_class]
    probes, stats = probe_weights(cfg, frames.shape[2:], n_classes, pool), []
    stat_gen = torch.Generator().manual_seed(1000 + x.seed)
    for w in tqdm(probes, desc="probe statistics", unit="probe", disable=None if ranks.rank_world()[0] == 0 else True):
        load_teacher(model, Teacher(w, w), 1.0)
        stats.append(real_stats(model, frames, by_class, layers, sdr_k, x.freqs, x.freq_scale, stat_gen))
    if resume is not None:
        with torch.no_grad():
            z.copy_(resume["z"])
        opt.load_state_dict(resume["opt"])
        sched.load_state_dict(resume["sched"])
        gen.set_state(resume["gen"])
        rng.bit_generator.state = resume["rng"]
        history, grads, start_step, seconds = resume["history"], resume["grads"], resume["step"], resume["seconds"]
        print(f"resuming distillation from step {start_step} ({checkpoint})", flush=True)
    else:
        seconds = time.perf_counter() - t0

    def save(step: int, elapsed: float) -> None:
        checkpoints.save(checkpoint, key, {"step": step, "z": z.detach().clone(), "opt": opt.state_dict(),
                                           "sched": sched.state_dict(), "gen": gen.get_state(),
                                           "rng": rng.bit_generator.state, "history": list(history),
                                           "grads": list(grads), "seconds": elapsed})

    # Under torchrun the classes are split across ranks (class c on rank c % world): the loss is a sum over
    # classes and each class's frames depend only on its own term. Every rank draws the same random numbers and
    # computes the same probe statistics; the frames are gathered at the end.
    rank, world = ranks.rank_world()
    mine = [c for c in range(n_classes) if c % world == rank]
    syn_by_class = [np.flatnonzero(syn_labels == c) for c in range(n_classes)]
    my_rows = np.concatenate([syn_by_class[c] for c in mine]) if mine else np.zeros(0, np.int64)
    t0 = time.perf_counter()
    bar = tqdm(range(start_step, x.iterations), desc=f"distilling ({x.method}, IPC {x.ipc})", unit="step",
               initial=start_step, total=x.iterations, disable=None if rank == 0 else True)
    for step in bar:
        k = int(rng.integers(len(probes)))
        load_teacher(model, Teacher(probes[k], probes[k]), 1.0)
        p = torch.sigmoid(z)
        if step >= x.iterations - x.round_steps:          # the stored set, with a straight-through gradient
            synth = p + ((p > 0.5).float() - p).detach()
        else:
            synth = peq(p, 1, gen) if x.peq else p
        f_syn = features(model, synth[my_rows], sdr_k, True, layers)
        loss, row = torch.zeros(()), 0
        for c in mine:
            rows, row = slice(row, row + len(syn_by_class[c])), row + len(syn_by_class[c])
            for real, f in zip(stats[k], f_syn):
                loss = loss + matching_loss(x.method, real, c, f[rows], temporal)
        loss = loss / (n_classes * len(layers))
        if not torch.isfinite(loss):        # a NaN set must not be rounded to zeros and stored as a result
            raise loop.TrainingError(f"distillation diverged at step {step + 1}/{x.iterations}: the matching "
                                      f"loss is {loss.item()}; lower distill.lr")
        opt.zero_grad()
        loss.backward()
        grads.append(float(z.grad.norm()))
        opt.step()
        sched.step()
        total = loss.detach().clone()
        if world > 1:
            dist.all_reduce(total)
        history.append(total.item())
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        if checkpoint is not None and ((step + 1) % x.checkpoint_every == 0 or step + 1 == x.iterations):
            save(step + 1, seconds + time.perf_counter() - t0)
        if on_step is not None:
            on_step(step + 1, history[-1])
    seconds += time.perf_counter() - t0
    if world > 1:
        parts = [None] * world
        dist.all_gather_object(parts, (my_rows, z.detach()[my_rows]))
        with torch.no_grad():
            for rows, values in parts:
                z[rows] = values
    with torch.no_grad():
        p = torch.sigmoid(z)
        out = peq(p, 1, gen) if x.binarize == "sample" else (p > 0.5).float()
    return Result(out.numpy().astype(np.uint8), syn_labels, history, seconds, start_step,
                  p.numpy().astype(np.float32), grads)
