"""PACE's probe networks: frozen SNNs of the run's architecture (fresh initialisations, or teachers trained on real
frames blended with their start) and the real statistics of each, computed once (pipeline/distill/pace.py)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from models.snn import SNN
from pipeline import ranks
from pipeline.architecture import build_model
from pipeline.config import ConfigError, RunConfig, SelectConfig
from pipeline.distill import coreset
from pipeline.distill.matching import Frequencies, RealStats, real_stats
from pipeline.train import loop

Weights = list[torch.Tensor]


@dataclass(frozen=True)
class Teacher:
    init: Weights
    final: Weights


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
        init = [w.detach().clone() for w in weights(build_model(tcfg, frames.shape[2:], n_classes))]
        print(f"teacher {k + 1}/{x.teachers}: {len(idx)} real samples, {x.teacher_epochs} epochs", flush=True)
        result = loop.train(tcfg, frames[idx], labels[idx], n_classes)
        pool.append(Teacher(init, [w.detach().clone() for w in weights(result.model)]))
    return pool


def weights(model: torch.nn.Module) -> Weights:
    """Every trained tensor of a probe, in a fixed order: the conv/dense SNN's layer weights, or the recurrent
    SNN's input weights then its recurrent ones."""
    return list(model.parameters())


def teacher_model(cfg: RunConfig, frame_shape: tuple[int, ...], n_classes: int) -> SNN:
    model = build_model(cfg, frame_shape, n_classes)
    model.requires_grad_(False)
    return model


def teacher_features(cfg: RunConfig, frames: np.ndarray, n_classes: int, teacher: Teacher) -> np.ndarray:
    """The trained ``teacher``'s time-averaged hidden spike rates (N, D) of ``frames``: what herding and k-center
    choose on (pipeline/distill/coreset.py)."""
    model = teacher_model(cfg, frames.shape[2:], n_classes)
    load_teacher(model, teacher, 1.0)
    return coreset.embed(model, frames)


def load_teacher(model: SNN, teacher: Teacher, a: float) -> None:
    with torch.no_grad():
        for w, w0, w1 in zip(weights(model), teacher.init, teacher.final, strict=True):
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
        out.append([w.detach().clone() for w in weights(model)])
    return out


@dataclass
class Probes:
    """The probe networks and the real statistics of each: a deterministic function of the configuration (a
    resumed run computes them again rather than storing them)."""
    model: SNN                    # one network; each probe's weights are loaded into it in turn
    layers: list[int]
    weights: list[Weights]
    stats: list[list[RealStats]]  # per probe, per matched layer


def build(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
            pool: list[Teacher] | None) -> Probes:
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
    return Probes(model, layers, weights, stats)
