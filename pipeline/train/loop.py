"""Training of the deployment-neuron SNN, quantisation-aware, with a rate (spike count) readout: BPTT on the
cross-entropy of the spike counts, or SLTT / SLTT-K (pipeline/sltt.py) with per-step losses."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from models import delays
from models.rsnn import RSNN
from models.snn import SNN
from pipeline.architecture import build_model
from pipeline.config import ConfigError, RunConfig
from pipeline.ranks import gather, rank_world
from pipeline.select.plans import SCORE_KIND, plan_epoch
from pipeline.select.scores import KINDS, example_scores
from pipeline.train import sltt, sltt_recurrent
from pipeline.train.augment import random_shift
from pipeline.train.errors import TrainingError  # noqa: F401  (raised here, named by the CLI)


def _hint(t) -> str:
    return (f"nothing was written (train.lr = {t.lr:g}, train.weight_decay = {t.weight_decay:g}, "
            f"train.surrogate_slope = {t.surrogate_slope:g}: try a smaller train.lr)")


def _check_finite(model: torch.nn.Module, epoch: int, t) -> None:
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingError(f"training diverged in epoch {epoch + 1}/{t.epochs}: weights {name!r} are no "
                                f"longer finite; {_hint(t)}")


@dataclass(frozen=True)
class TrainResult:
    model: SNN
    epoch_seconds: tuple[float, ...]
    epoch_loss: tuple[float, ...]
    epoch_examples: tuple[int, ...]     # examples trained on in each epoch
    pruned_epochs: tuple[bool, ...]
    epoch_accuracy: tuple[float, ...] = ()          # float (QAT) forward on the monitored split (validation),
    eval_epochs: tuple[int, ...] = ()               # after these epochs (1-based; train.eval_every)
    epoch_steps: tuple[int, ...] = ()               # optimiser steps in each epoch
    eval_seconds: float = 0.0                       # time spent on those evaluations (not in epoch_seconds)
    eval_samples: int = 0                           # monitored samples evaluated each time (train.eval_samples)
    epoch_cpu_seconds: tuple[float, ...] = ()       # processor time of this process in each epoch (all threads):
                                                    # what the epoch cost, whatever else ran on the machine
    scores: dict | None = None                      # each example's smoothed score by kind after the last epoch
                                                    # (what selection would have drawn from next); the kinds
                                                    # computed: a memory-flat trainer that did not record the
                                                    # per-step drive has no "spike" score

    @property
    def examples_processed(self) -> int:
        return int(sum(self.epoch_examples))


def refresh_scores(scores: dict[str, np.ndarray], seen: np.ndarray, idx: np.ndarray,
                   new: dict[str, torch.Tensor], ema: float) -> None:
    """EMA-refresh the scores of the examples just trained on; a first visit sets the score."""
    for kind, value in new.items():
        v = value.numpy().astype(np.float64)
        scores[kind][idx] = np.where(seen[idx], ema * scores[kind][idx] + (1 - ema) * v, v)
    seen[idx] = True


def set_lr(opt: torch.optim.Optimizer, base: float, progress: float) -> None:
    """Cosine learning rate, set before every optimiser step from the fraction of the schedule done,
    ``epoch + (batch / batches in this epoch)`` over the epochs: a pruned epoch takes fewer, larger steps along
    the same curve, so every run, pruned or not, ends its schedule where full data does (at zero)."""
    for group in opt.param_groups:     # lr_scale: a group's own multiple (trained delays: models/delays.py)
        group["lr"] = base * group.get("lr_scale", 1.0) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def device_of(cfg: RunConfig) -> torch.device:
    """The training device: ``train.device``, with ``auto`` taking CUDA when torch sees a GPU."""
    want = cfg.train.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config train.device = 'cuda' is not allowed here: torch sees no CUDA device")
    if want == "cuda" and dist.is_initialized():
        return torch.device("cuda", dist.get_rank() % torch.cuda.device_count())
    return torch.device(want)


@dataclass(frozen=True)
class How:
    """How one optimiser step trains: ``method`` (train.method), the SLTT-K ``steps`` (None: every step), with
    eligibility ``traced`` (train.traces), per-step records for SADP's score (``record``), and the conv/dense
    trainer's ``window`` (train.window)."""
    method: str
    steps: set[int] | None = None
    traced: bool = False
    record: bool = True
    window: int = sltt.CHUNK


def step(model: SNN, net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
         w: torch.Tensor, how: How):
    """One optimiser step on a batch with per-example loss weights ``w``: BPTT through ``net`` (the model, or its
    DDP wrapper) or SLTT / SLTT-K, as ``how`` says. Returns the output spike counts (B, classes), the output
    drive (B, n_steps, classes) and the penultimate spike counts (B, n_steps) (None from an online trainer not
    asked to ``record`` them: SADP's score needs them) and the per-example cross-entropy of the counts, all
    detached."""
    opt.zero_grad()
    if how.method == "bptt":
        out = net(x)
        counts, out_drive, hidden = out.spikes[-1].sum(dim=1), out.drive[-1], out.spikes[-2].sum(dim=2)
        ce = F.cross_entropy(counts, y, reduction="none")
        (w * ce).sum().backward()
    else:
        if isinstance(model, RSNN):
            rec, _ = sltt_recurrent.backward(model, x, y, w, how.steps, traced=how.traced, record=how.record)
        else:
            rec, _ = sltt.backward(model, x, y, w, how.steps, chunk=how.window, traced=how.traced)
        counts, out_drive, hidden = rec.counts, rec.output_drive, rec.hidden_counts
        ce = F.cross_entropy(counts, y, reduction="none")
        world = rank_world()[1]
        if world > 1:
            for p in model.parameters():     # SLTT calls backward per chunk, which DDP's reducer does not allow
                dist.all_reduce(p.grad)
                p.grad /= world
    opt.step()
    delays.clamp(model)
    detach = lambda t: None if t is None else t.detach()          # noqa: E731
    return counts.detach(), detach(out_drive), detach(hidden), ce.detach()


def accuracy(model: SNN, frames: np.ndarray, labels: np.ndarray, batch: int = 250) -> float:
    """Accuracy of the training-mode (float, quantisation-aware) forward pass: the per-epoch curve on the
    validation split. The deployed integer model's test accuracy is measured once at the end, by the golden
    model."""
    device = next(model.parameters()).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            counts = model(torch.from_numpy(frames[i:i + batch]).to(device)).spikes[-1].sum(dim=1)
            correct += int((counts.argmax(dim=1).cpu().numpy() == labels[i:i + batch]).sum())
    return correct / max(len(labels), 1)


def train(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int,
          monitor: tuple[np.ndarray, np.ndarray] | None = None) -> TrainResult:
    """Train on (N, T, 2, H, W) frames; cross-entropy on output spike counts (BPTT) or per step (SLTT), each
    example's loss weighted as the epoch's selection plan says (1 for full data). ``monitor`` (frames, labels):
    a split whose float accuracy is measured after every ``train.eval_every`` epochs and after the last, on a fixed
    subset of at most ``train.eval_samples`` of its samples (the run's validation split); that time is kept out
    of ``epoch_seconds`` and reported as ``eval_seconds``.

    Under torchrun (torch.distributed initialised), every rank draws the same plan and the same augmentation for
    each global batch and trains on its share (examples rank, rank + world, ...) of it, with DDP averaging the
    gradients (SLTT backpropagates once per step, which DDP's reducer does not allow: its gradients are
    all-reduced by hand, the same arithmetic). The per-example weights are scaled so that the averaged gradient
    is the single-process gradient of the whole batch; scores are gathered, so selections agree on every rank.
    """
    t, sel = cfg.train, cfg.select
    rank, world = rank_world()
    device = device_of(cfg)
    model = build_model(cfg, frames.shape[2:], n_classes).to(device)
    run = _Run(cfg, model, DistributedDataParallel(model) if world > 1 and t.method == "bptt" else model,
               torch.optim.AdamW(delays.param_groups(model), lr=t.lr, weight_decay=t.weight_decay),
               torch.Generator().manual_seed(t.seed), np.random.default_rng([t.seed, 7]),
               torch.from_numpy(frames), torch.from_numpy(labels), device,
               {kind: np.ones(len(labels)) for kind in KINDS}, np.zeros(len(labels), bool))
    rng = np.random.default_rng([sel.seed, t.seed])
    record = _Record()
    monitor = monitor_subset(monitor, t.eval_samples) if monitor is not None and t.eval_every else None
    for epoch in range(t.epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = plan_epoch(sel, epoch, t.epochs, run.scores, rng)
        total, n_batches = _epoch(run, epoch, plan)
        _check_finite(model, epoch, t)
        record.seconds.append(time.perf_counter() - start)
        record.cpu_seconds.append(time.process_time() - cpu_start)
        record.losses.append(total / max(len(plan.indices), 1))
        record.examples.append(len(plan.indices))
        record.n_steps.append(n_batches)
        record.pruned.append(plan.pruned)
        if monitor is not None and len(monitor[1]) and rank == 0 and \
                ((epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs):
            t_eval = time.perf_counter()
            record.curve.append(accuracy(model, *monitor))
            record.evaluated.append(epoch + 1)
            record.eval_seconds += time.perf_counter() - t_eval
        if rank == 0:
            tqdm.write(f"epoch {epoch + 1}/{t.epochs}: loss {record.losses[-1]:.4f}, {record.examples[-1]} examples"
                       f"{' (pruned)' if plan.pruned else ''}" + (f" on {world} ranks" if world > 1 else "")
                       + f", {record.seconds[-1]:.1f} s" + (f", validation accuracy {record.curve[-1]:.4f}"
                                                             if record.evaluated[-1:] == [epoch + 1] else ""))
    return TrainResult(model.cpu(), tuple(record.seconds), tuple(record.losses), tuple(record.examples),
                       tuple(record.pruned), tuple(record.curve), tuple(record.evaluated), tuple(record.n_steps),
                       record.eval_seconds, len(monitor[1]) if monitor is not None and record.curve else 0,
                       tuple(record.cpu_seconds), {k: v for k, v in run.scores.items() if k in run.kinds})


@dataclass
class _Run:
    """What every batch of a training run uses and updates."""
    cfg: RunConfig
    model: SNN
    net: torch.nn.Module                # the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    gen: torch.Generator                # augmentation
    step_rng: np.random.Generator       # SLTT-K's step choice
    x_all: torch.Tensor
    y_all: torch.Tensor
    device: torch.device
    scores: dict                        # each example's smoothed score by kind
    seen: np.ndarray
    kinds: set = field(default_factory=set)     # the kinds of score computed (a memory-flat trainer may not record
                                                # what SADP's needs)


@dataclass
class _Record:
    """Per epoch: what TrainResult reports."""
    seconds: list = field(default_factory=list)
    cpu_seconds: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    examples: list = field(default_factory=list)
    n_steps: list = field(default_factory=list)
    pruned: list = field(default_factory=list)
    curve: list = field(default_factory=list)
    evaluated: list = field(default_factory=list)
    eval_seconds: float = 0.0


def _epoch(run: _Run, epoch: int, plan) -> tuple[float, int]:
    """One epoch of ``plan``'s examples: the summed loss over every rank's examples, and the optimiser steps."""
    t, sel, model = run.cfg.train, run.cfg.select, run.model
    rank, world = rank_world()
    n, total = len(run.y_all), 0.0
    # select.keep_steps: a pruned epoch takes as many optimiser steps as a full one, on smaller batches
    bs = max(1, round(t.batch_size * len(plan.indices) / n)) if sel.keep_steps and plan.pruned else t.batch_size
    batches = tqdm(range(0, len(plan.indices), bs), desc=f"epoch {epoch + 1}/{t.epochs}",
                   unit="batch", leave=False, disable=None if rank == 0 else True)
    n_batches = max(1, math.ceil(len(plan.indices) / bs))
    for b in batches:
        set_lr(run.opt, t.lr, (epoch + b / bs / n_batches) / t.epochs)
        delays.anneal(model, (epoch + b / bs / n_batches) / t.epochs)
        batch = plan.indices[b:b + bs]
        mine = slice(rank, None, world)                  # this rank's share of the global batch
        idx = batch[mine]
        xb = random_shift(run.x_all[batch], t.augment_shift, run.gen)[mine].to(run.device)
        y = run.y_all[idx].to(run.device)
        # sum(w ce) of the shares, averaged over ranks, is the mean over the whole batch
        w = torch.from_numpy(plan.weights[b:b + bs][mine] * world / len(batch)).float().to(run.device)
        steps = sltt.choose_steps(xb.shape[1], model.depth, t.k, run.step_rng) if t.method == "sltt-k" else None
        how = How(t.method, steps, t.traces, SCORE_KIND.get(sel.method) == "spike", t.window)
        counts, out_drive, hidden, ce = step(model, run.net, run.opt, xb, y, w, how)
        loss = (w * ce).sum()
        new = {k: v.cpu() for k, v in example_scores(counts, out_drive, hidden, y, t.surrogate_slope).items()}
        run.kinds.update(new)
        for part_idx, part_scores, part_total in gather((idx, new, ce.sum().item())):
            refresh_scores(run.scores, run.seen, part_idx, part_scores, sel.ema)
            total += part_total
        batches.set_postfix(loss=f"{loss.item():.3f}")      # this rank's share, scaled to a batch mean
        if not math.isfinite(loss.item()):
            raise TrainingError(f"training diverged in epoch {epoch + 1}/{t.epochs}, batch "
                                f"{b // bs + 1}: the loss is {loss.item()}; {_hint(t)}")
    return total, n_batches


def monitor_subset(monitor: tuple[np.ndarray, np.ndarray], cap: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` samples of the monitored split (0 = all): the same seeded subset for every run on it, in
    the split's order, so learning curves of different methods and seeds are measured on the same samples."""
    frames, labels = monitor
    if not cap or cap >= len(labels):
        return frames, labels
    keep = np.sort(np.random.default_rng(0).permutation(len(labels))[:cap])
    return frames[keep], labels[keep]
