"""PACE's distillation loop: synthetic event frames matched to real ones on the features of probe SNNs.

Our reading of the paper (arXiv 2511.12095; ../shared/ALGORITHMS.md), with every inferred choice an option of
``DistillConfig``:

- Synthetic set: logits ``Z`` (classes x IPC, T, 2, H, W) of event probabilities ``p = sigmoid(Z)``, started
  from real frames of each class (random ones or the herding coreset, ``distill.init``), clipped to
  [eps, 1 - eps], and optimised with Adam under a cosine schedule.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import distributed as dist
from tqdm import tqdm

from pipeline import ranks
from pipeline.config import RunConfig
from pipeline.distill import checkpoint as checkpoints
from pipeline.distill import coreset, probes
from pipeline.distill.matching import RealStats, amplitude_phase, characteristic, features
from pipeline.distill.peq import peq
from pipeline.train import loop

OPTIMISED = ("pace", "cf", "dm")


def needs_teachers(cfg: RunConfig) -> bool:
    """Whether the method trains a teacher pool: trained or mixed probes, or the herding/k-center embedding (of a
    coreset, or of an optimised set's herding start)."""
    x = cfg.distill
    return x.method in ("herding", "kcenter") or (x.method in OPTIMISED and (x.pool != "random" or x.init == "herding"))


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


def start_indices(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
                  pool: list[probes.Teacher] | None, rng: np.random.Generator) -> np.ndarray:
    """The real samples an optimised set starts from (``distill.init``): random ones (drawn from ``rng``), or the
    herding coreset on the first teacher's features. The random draw is made either way, so that the probes drawn
    after it are the same for both starts."""
    idx = init_indices(labels, n_classes, cfg.distill.ipc, rng)
    if cfg.distill.init == "random":
        return idx
    if not pool:
        raise ValueError("distill.init=herding starts from a trained teacher's herding coreset: pass the teacher "
                         "pool (pace.needs_teachers says when one is needed)")
    return coreset.select("herding", labels, n_classes, cfg.distill.ipc, rng,
                          probes.teacher_features(cfg, frames, n_classes, pool[0]))


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
    seconds: float                # optimisation time (this call plus resumed ones), probe statistics and checks
    resumed_from: int             # step the run resumed from (0 = fresh)
    probabilities: np.ndarray | None = None   # (classes x ipc, T, 2, H, W) float32: the continuous set
    grad_norms: list[float] | None = None     # norm of the gradient on the logits, per step
    checks: list[list[float]] = field(default_factory=list)   # [step, validation accuracy] of each check
    kept_step: int | None = None  # the step whose set is stored (None: the last; no checks were made)
    start: np.ndarray | None = None   # indices of the real samples it started from (distill.init)


Judge = Callable[[np.ndarray, np.ndarray], float]     # (frames, labels) -> validation accuracy of a fresh SNN


def optimise(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
             pool: list[probes.Teacher] | None = None, checkpoint: Path | None = None,
             judge: Judge | None = None, on_step: Callable[[int, float], None] | None = None) -> Result:
    """Optimise the synthetic frames of ``cfg.distill.method`` (pace, cf or dm) against real ``frames``.

    With ``judge`` and ``distill.keep=best`` the stored set is judged at the start and every
    ``distill.check_every`` steps (pipeline/distill/keep.py: a fresh SNN trained on it, scored on the validation
    split) and the best one is kept, the start on a tie: the result is never worse than its start on validation.
    Under torchrun the classes are split across ranks (class c on rank c % world): the loss is a sum over
    classes and each class's frames depend only on its own term. Every rank draws the same random numbers and
    computes the same probe statistics; the frames are gathered for each check and at the end."""
    x = cfg.distill
    rank, world = ranks.rank_world()
    rng = np.random.default_rng([x.seed, 17])          # the start's draw, then the probe of each step
    t0 = time.perf_counter()
    idx = start_indices(cfg, frames, labels, n_classes, pool, rng)
    syn_labels = labels[idx]
    start = np.clip(np.minimum(frames[idx], 1).astype(np.float32), x.init_eps, 1 - x.init_eps)
    state = checkpoints.OptimiserState(start, x.lr, x.iterations, rng, torch.Generator().manual_seed(x.seed))
    checking = judge is not None and x.keep == "best"        # decided here only: callers pass what they have
    key = config_key(cfg) + f"-world{world}" + ("-judged" if checking else "")
    if checkpoint is not None and world > 1:
        checkpoint = checkpoint.with_name(f"{checkpoint.name}.rank{rank}")
    resume = checkpoints.load(checkpoint, key) if checkpoint is not None else None
    probe_set = probes.build(cfg, frames, labels, n_classes, pool)
    if resume is not None:
        state.restore(resume)
        print(f"resuming distillation from step {state.step} ({checkpoint})", flush=True)
    else:
        state.seconds = time.perf_counter() - t0
    start_step = state.step
    syn_by_class = [np.flatnonzero(syn_labels == c) for c in range(n_classes)]
    mine = [c for c in range(n_classes) if c % world == rank]
    my_classes = [syn_by_class[c] for c in mine]
    t0 = time.perf_counter()
    if checking and start_step == 0:
        _check(cfg, state, judge, my_classes, syn_labels, 0)
    bar = tqdm(range(start_step, x.iterations), desc=f"distilling ({x.method}, IPC {x.ipc})", unit="step",
               initial=start_step, total=x.iterations, disable=None if rank == 0 else True)
    for step in bar:
        _step(cfg, state, probe_set, my_classes, mine, step)
        bar.set_postfix(loss=f"{state.history[-1]:.4f}", **({"best": f"{state.best[1]:.4f} @{state.best[0]}"}
                                                            if state.best else {}))
        if checking and ((step + 1) % x.check_every == 0 or step + 1 == x.iterations):
            _check(cfg, state, judge, my_classes, syn_labels, step + 1)
        if checkpoint is not None and ((step + 1) % x.checkpoint_every == 0 or step + 1 == x.iterations):
            state.save(checkpoint, key, step + 1, state.seconds + time.perf_counter() - t0)
        if on_step is not None:
            on_step(step + 1, state.history[-1])
    state.seconds += time.perf_counter() - t0
    result = _result(cfg, state, syn_labels, my_classes, start_step)
    result.start = idx
    return result


def _check(cfg: RunConfig, state: checkpoints.OptimiserState, judge: Judge, my_classes: list[np.ndarray],
           syn_labels: np.ndarray, step: int) -> None:
    """Judge the set as it would be stored now; keep its logits when it beats every earlier check."""
    z = _gathered(state.z, my_classes)
    acc = float(judge(_stored(cfg, z, step), syn_labels))
    state.checks.append([step, acc])
    if state.best is None or acc > state.best[1]:
        state.best = (step, acc, z)                        # z: a copy (_gathered)
    print(f"distillation check at step {step}: validation accuracy {acc:.4f} (best {state.best[1]:.4f} at step "
          f"{state.best[0]})", flush=True)


def _step(cfg: RunConfig, state: checkpoints.OptimiserState, probe_set: probes.Probes, my_classes: list[np.ndarray],
          mine: list[int], step: int) -> None:
    """One optimisation step on a probe drawn at random: this rank's classes' matching loss, backward, Adam."""
    x, n_classes = cfg.distill, len(probe_set.stats[0][0].mean)
    sdr_k, temporal = probes.effective(cfg)
    k = int(state.rng.integers(len(probe_set.weights)))
    probes.load_teacher(probe_set.model, probes.Teacher(probe_set.weights[k], probe_set.weights[k]), 1.0)
    p = torch.sigmoid(state.z)
    if step >= x.iterations - x.round_steps:          # the stored set, with a straight-through gradient
        synth = p + ((p > 0.5).float() - p).detach()
    else:
        synth = peq(p, 1, state.gen) if x.peq else p
    my_rows = np.concatenate(my_classes) if my_classes else np.zeros(0, np.int64)
    f_syn = features(probe_set.model, synth[my_rows], sdr_k, True, probe_set.layers)
    loss, row = torch.zeros(()), 0
    for c, members in zip(mine, my_classes):
        rows, row = slice(row, row + len(members)), row + len(members)
        for real, f in zip(probe_set.stats[k], f_syn):
            loss = loss + matching_loss(x.method, real, c, f[rows], temporal)
    loss = loss / (n_classes * len(probe_set.layers))
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


def _gathered(z: torch.Tensor, my_classes: list[np.ndarray]) -> torch.Tensor:
    """Every class's logits (each rank optimises only its own classes' rows): a copy, gathered from every rank."""
    z = z.detach().clone()
    if ranks.rank_world()[1] > 1:
        my_rows = np.concatenate(my_classes) if my_classes else np.zeros(0, np.int64)
        parts = [None] * ranks.rank_world()[1]
        dist.all_gather_object(parts, (my_rows, z[my_rows]))
        for rows, values in parts:
            z[rows] = values
    return z


def _stored(cfg: RunConfig, z: torch.Tensor, step: int) -> np.ndarray:
    """The binary set that logits ``z`` store (``distill.binarize``; a draw seeded by the step, so judging a set
    takes nothing from the optimisation's random stream)."""
    p = torch.sigmoid(z)
    if cfg.distill.binarize == "sample":
        out = peq(p, 1, torch.Generator().manual_seed(cfg.distill.seed * 100_003 + step))
    elif cfg.distill.binarize == "expected":
        out = expected_events(p)
    else:
        out = (p > 0.5).float()
    return out.numpy().astype(np.uint8)


def expected_events(p: torch.Tensor) -> torch.Tensor:
    """Each sample's expected number of events, round(sum p), placed at its most probable pixel-steps (ties: the
    first in memory order): rounding p > 1/2 drops every event whose probability the optimisation moved below one
    half, and with it occupied pixel-steps (measured on Fashion: 1,530 to 1,859 per recording against a real
    recording's 1,980, benchmarks/results/occupancy_fashion.txt); this keeps the rate the probabilities say,
    deterministically."""
    flat = p.reshape(len(p), -1)
    k = flat.sum(dim=1).round().long()
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1]).expand_as(order))
    return (ranks < k[:, None]).float().reshape(p.shape)


def _result(cfg: RunConfig, state: checkpoints.OptimiserState, syn_labels: np.ndarray, my_classes: list[np.ndarray],
            start_step: int) -> Result:
    """The kept logits (the best check's, or the last step's), gathered from every rank, stored as
    ``distill.binarize`` says."""
    kept, z = (state.best[0], state.best[2]) if state.best is not None else (None, _gathered(state.z, my_classes))
    step = cfg.distill.iterations if kept is None else kept
    return Result(_stored(cfg, z, step), syn_labels, state.history, state.seconds, start_step,
                  torch.sigmoid(z).numpy().astype(np.float32), state.grads, state.checks, kept)
