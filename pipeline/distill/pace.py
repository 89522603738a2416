"""PACE's distillation loop: synthetic event frames matched to real ones on frozen teacher SNN features.

Our reading of the paper (arXiv 2511.12095; ../shared/ALGORITHMS.md), with every inferred choice an option of
``DistillConfig``:

- Teachers: ``distill.teachers`` SNNs of the run's architecture trained on real frames for
  ``distill.teacher_epochs`` epochs. At each step one teacher is drawn, with weights ``(1 - a) init + a final``
  for a ~ U(0, 1), and stays frozen: only the synthetic frames are optimised.
- Synthetic set: a tensor Z (classes x IPC, T, 2, H, W) initialised from random real frames of each class. The
  teacher sees ``PEQ-N(Z)``: integer event counts whose expectation is Z, with a straight-through gradient.
- Features: the teacher's hidden layer over all time steps, as SDR features ``s + k (v / theta - s)``.
- Loss per class, on features divided by the spread of the real batch (rms distance of the time-averaged
  features to their mean), so that both terms are scale-free: the characteristic-function distance (amplitude +
  phase) between the time-averaged real and synthetic features at ``distill.freqs`` random frequencies
  w ~ N(0, freq_scale^2 I) drawn each step, plus ``temporal`` times the DFT amplitude/phase distance of the
  class-mean feature sequences.
- Baselines on the same loop: ``cf`` (spatial CF term on spikes only: no SDR, no temporal term) and ``dm``
  (distribution matching: squared distance of mean spike features, Zhao & Bilen 2023).

The loop checkpoints every ``checkpoint_every`` steps (synthetic frames, optimiser, random states, teachers) and
a new call with the same configuration resumes from the last checkpoint.
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
from pipeline import train
from pipeline.config import RunConfig, SelectConfig
from pipeline.distill.matching import sdr_features, spatial_distance, temporal_distance
from pipeline.distill.peq import peq
from pipeline.runfolder import atomic_write

OPTIMISED = ("pace", "cf", "dm")
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
        init = [w.detach().clone() for w in train.build_model(tcfg, frames.shape[2:], n_classes).weights]
        print(f"teacher {k + 1}/{x.teachers}: {len(idx)} real samples, {x.teacher_epochs} epochs", flush=True)
        result = train.train(tcfg, frames[idx], labels[idx], n_classes)
        pool.append(Teacher(init, [w.detach().clone() for w in result.model.weights]))
    return pool


def teacher_model(cfg: RunConfig, frame_shape: tuple[int, ...], n_classes: int) -> SNN:
    model = train.build_model(cfg, frame_shape, n_classes)
    model.requires_grad_(False)
    return model


def load_teacher(model: SNN, teacher: Teacher, a: float) -> None:
    with torch.no_grad():
        for w, w0, w1 in zip(model.weights, teacher.init, teacher.final):
            w.copy_((1 - a) * w0 + a * w1)


def features(model: SNN, x: torch.Tensor, sdr_k: float, keep_graph: bool) -> torch.Tensor:
    """Hidden-layer features (B, n_steps, D): SDR features, or spikes when ``sdr_k`` is 0."""
    out = model(x, detach_drive=not keep_graph)
    return sdr_features(out.spikes[0], out.drive[0], sdr_k) if sdr_k else out.spikes[0]


def effective(cfg: RunConfig) -> tuple[float, float]:
    """(sdr_k, temporal weight) the method uses: CF and DM baselines match spikes without the temporal term."""
    x = cfg.distill
    return (x.sdr_k, x.temporal) if x.method == "pace" else (0.0, 0.0)


def matching_loss(method: str, real: torch.Tensor, synth: torch.Tensor, freqs: torch.Tensor,
                  temporal: float) -> torch.Tensor:
    """Loss between one class's real (B_r, n, D) and synthetic (B_s, n, D) feature sequences."""
    if method == "dm":
        return ((real.mean(dim=(0, 1)) - synth.mean(dim=(0, 1))) ** 2).sum()
    loss = spatial_distance(real.mean(dim=1), synth.mean(dim=1), freqs)
    return loss + temporal * temporal_distance(real, synth) if temporal else loss


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
    frames: np.ndarray            # (classes x ipc, T, 2, H, W) uint8
    labels: np.ndarray
    history: list[float]          # loss per step
    seconds: float                # optimisation time (this call plus resumed ones)
    resumed_from: int             # step the run resumed from (0 = fresh)


def optimise(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int, pool: list[Teacher],
             checkpoint: Path | None = None,
             on_step: Callable[[int, float], None] | None = None) -> Result:
    """Optimise the synthetic frames of ``cfg.distill.method`` (pace, cf or dm) against real ``frames``."""
    x = cfg.distill
    sdr_k, temporal = effective(cfg)
    rng = np.random.default_rng([x.seed, 17])
    gen = torch.Generator().manual_seed(x.seed)
    idx = init_indices(labels, n_classes, x.ipc, rng)
    syn_labels = labels[idx]
    z = torch.from_numpy(np.minimum(frames[idx], x.n_max).astype(np.float32)).requires_grad_(True)
    opt = (torch.optim.Adam([z], lr=x.lr) if x.optimizer == "adam"
           else torch.optim.SGD([z], lr=x.lr, momentum=0.9))
    history, start_step, seconds = [], 0, 0.0
    key = config_key(cfg) + f"-world{train.rank_world()[1]}"
    if checkpoint is not None and train.rank_world()[1] > 1:
        checkpoint = checkpoint.with_name(f"{checkpoint.name}.rank{train.rank_world()[0]}")
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, weights_only=False)
        if ck["key"] == key:
            with torch.no_grad():
                z.copy_(ck["z"])
            opt.load_state_dict(ck["opt"])
            gen.set_state(ck["gen"])
            rng.bit_generator.state = ck["rng"]
            history, start_step, seconds = ck["history"], ck["step"], ck["seconds"]
            print(f"resuming distillation from step {start_step} ({checkpoint})", flush=True)
        else:
            print(f"ignoring checkpoint {checkpoint}: it was written for another configuration", flush=True)
    model = teacher_model(cfg, frames.shape[2:], n_classes)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    syn_by_class = [np.flatnonzero(syn_labels == c) for c in range(n_classes)]
    x_real_all = torch.from_numpy(frames)

    def save(step: int, elapsed: float) -> None:
        state = {"key": key, "step": step, "z": z.detach().clone(), "opt": opt.state_dict(),
                 "gen": gen.get_state(), "rng": rng.bit_generator.state, "history": list(history),
                 "seconds": elapsed}
        atomic_write(checkpoint, lambda p: torch.save(state, p))

    # Under torchrun the classes are split across ranks (class c on rank c % world): the loss is a sum over
    # classes and each class's frames depend only on its own term. Every rank draws the same random numbers,
    # the spread of the real features is all-reduced, and the frames are gathered at the end.
    rank, world = train.rank_world()
    mine = [c for c in range(n_classes) if c % world == rank]
    my_rows = np.concatenate([syn_by_class[c] for c in mine]) if mine else np.zeros(0, np.int64)
    t0 = time.perf_counter()
    bar = tqdm(range(start_step, x.iterations), desc=f"distilling ({x.method}, IPC {x.ipc})", unit="step",
               initial=start_step, total=x.iterations, disable=None if rank == 0 else True)
    for step in bar:
        k = int(rng.integers(len(pool)))
        load_teacher(model, pool[k], float(rng.random()))
        real_idx = [rng.choice(ix, size=min(x.batch_real, len(ix)), replace=False) for ix in by_class]
        with torch.no_grad():
            f_real = features(model, x_real_all[np.concatenate([real_idx[c] for c in mine])], sdr_k,
                              keep_graph=False)
            spatial = f_real.mean(dim=1)
            stats = torch.cat([spatial.sum(dim=0), spatial.pow(2).sum().view(1), torch.tensor([len(spatial)])])
            if world > 1:
                dist.all_reduce(stats)
            mean = stats[:-2] / stats[-1]
            spread = (stats[-2] / stats[-1] - mean.pow(2).sum()).clamp(min=1e-12).sqrt()
        synth = peq(z, x.n_max, gen) if x.peq else z.clamp(0, x.n_max)
        f_syn = features(model, synth[my_rows], sdr_k, keep_graph=True)
        f_real, f_syn = f_real / spread, f_syn / spread      # scale-free: both terms in units of the real spread
        freqs = torch.randn(x.freqs, spatial.shape[1], generator=gen) * x.freq_scale
        loss, offset, row = torch.zeros(()), 0, 0
        for c in mine:
            real_c, offset = f_real[offset:offset + len(real_idx[c])], offset + len(real_idx[c])
            syn_c, row = f_syn[row:row + len(syn_by_class[c])], row + len(syn_by_class[c])
            loss = loss + matching_loss(x.method, real_c, syn_c, freqs, temporal)
        loss = loss / n_classes
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            z.clamp_(0, x.n_max)      # stay where PEQ-N passes gradients (outside, Z would be stuck)
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
        out = peq(z, x.n_max, gen) if x.peq else z.clamp(0, x.n_max).round()
    return Result(out.numpy().astype(np.uint8), syn_labels, history, seconds, start_step)
