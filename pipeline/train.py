"""BPTT training of the deployment-neuron SNN, quantisation-aware, with a rate (spike count) readout."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from models.neuron import CubaParams
from models.snn import DenseSNN
from pipeline.config import RunConfig


@dataclass(frozen=True)
class TrainResult:
    model: DenseSNN
    epoch_seconds: tuple[float, ...]
    epoch_loss: tuple[float, ...]
    examples_processed: int


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> DenseSNN:
    m = cfg.model
    neurons = (CubaParams(m.du, m.dv, m.vth_hidden), CubaParams(m.du, m.dv, m.vth_out))
    sizes = (int(np.prod(input_shape)), m.hidden, n_classes)
    gen = torch.Generator().manual_seed(cfg.train.seed)
    return DenseSNN(sizes, neurons, m.weight_exp, input_shape, gen, slope=cfg.train.surrogate_slope)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each sample's frames (B, T, C, H, W) by up to ``max_shift`` pixels in x and y, zero-filled."""
    if max_shift == 0:
        return x
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    out = torch.zeros_like(x)
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, B), generator=gen).tolist()
    for b in range(B):
        ys, yd = (slice(0, H - dy[b]), slice(dy[b], H)) if dy[b] >= 0 else (slice(-dy[b], H), slice(0, H + dy[b]))
        xs, xd = (slice(0, W - dx[b]), slice(dx[b], W)) if dx[b] >= 0 else (slice(-dx[b], W), slice(0, W + dx[b]))
        out[b, ..., yd, xd] = x[b, ..., ys, xs]
    return out


def train(cfg: RunConfig, frames: np.ndarray, labels: np.ndarray, n_classes: int) -> TrainResult:
    """Train with BPTT on (N, T, 2, H, W) frames; cross-entropy on output spike counts."""
    t = cfg.train
    model = build_model(cfg, frames.shape[2:], n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(t.epochs, 1))
    gen = torch.Generator().manual_seed(t.seed)
    x_all, y_all = torch.from_numpy(frames), torch.from_numpy(labels)
    seconds, losses, processed = [], [], 0
    for epoch in range(t.epochs):
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(y_all), generator=gen)
        batches = tqdm(order.split(t.batch_size), desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch",
                       leave=False, disable=None)
        for idx in batches:
            out = model(random_shift(x_all[idx], t.augment_shift, gen))[-1]
            loss = F.cross_entropy(out.sum(dim=1), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            processed += len(idx)
            batches.set_postfix(loss=f"{loss.item():.3f}")
        sched.step()
        seconds.append(time.perf_counter() - start)
        losses.append(total / len(y_all))
        tqdm.write(f"epoch {epoch + 1}/{t.epochs}: loss {losses[-1]:.4f}, {seconds[-1]:.1f} s")
    return TrainResult(model, tuple(seconds), tuple(losses), processed)

