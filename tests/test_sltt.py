"""SLTT and SLTT-K: gradients against BPTT, a retained graph bounded in T, exactly K backpropagated steps."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from models.neuron import CubaParams
from models.snn import SNN, ConvShape
from pipeline import sltt


def small_net(du: int, dv: int, conv: bool = False) -> SNN:
    gen = torch.Generator().manual_seed(0)
    if conv:
        return SNN((2, 6, 6), (ConvShape((2, 6, 6), 4, 3, 2, 1),), (36, 5), (CubaParams(du, dv, 30),) * 2, 0, gen,
                   init_std=(60.0, 40.0))
    return SNN((2, 6, 6), (), (72, 40, 5), (CubaParams(du, dv, 30), CubaParams(du, dv, 30)), 0, gen,
               init_std=(40.0, 40.0))


def batch(T: int, B: int = 32):
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(B, T, 2, 6, 6, generator=gen) < 0.3).to(torch.uint8), torch.randint(0, 5, (B,), generator=gen)


def flat(grads) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads])


def bptt_grads(model: SNN, x, y) -> torch.Tensor:
    """BPTT (full graph through every neuron state) of SLTT's per-step loss CE(c_{t-1} + s_t) / n."""
    s = model(x).spikes[-1]
    n = s.shape[1]
    counts = torch.cumsum(s, dim=1).detach()
    loss = sum(F.cross_entropy((counts[:, t - 1] if t else 0) + s[:, t], y) for t in range(n)) / n
    return flat(torch.autograd.grad(loss, list(model.weights)))


def sltt_grads(model: SNN, x, y, steps=None) -> torch.Tensor:
    model.zero_grad()
    sltt.backward(model, x, y, torch.full((len(y),), 1 / len(y)), steps)
    return flat([w.grad for w in model.weights])


def cosine(a, b) -> float:
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_sltt_gradient_matches_bptt_when_time_constants_are_short(conv):
    x, y = batch(12)
    short = small_net(4095, 4095, conv)  # u cleared every step, v keeps 1/4096: no temporal route left
    assert cosine(sltt_grads(short, x, y), bptt_grads(short, x, y)) > 0.999
    long = small_net(0, 0, conv)         # u and v never decay: the temporal route SLTT drops matters
    assert cosine(sltt_grads(long, x, y), bptt_grads(long, x, y)) < 0.9


@pytest.mark.parametrize("method", ["bptt", "sltt"])
def test_retained_graph_of_sltt_does_not_grow_with_time_steps(method):
    peaks = {}
    for T in (8, 32):
        model, (x, y) = small_net(1024, 256), batch(T)
        with sltt.SavedTensorMeter() as meter:
            if method == "bptt":
                F.cross_entropy(model(x).spikes[-1].sum(dim=1), y).backward()
            else:
                sltt.backward(model, x, y, torch.ones(len(y)))
        peaks[T] = meter.peak
        assert meter.live <= meter.peak and meter.peak > 0
    ratio = peaks[32] / peaks[8]
    assert ratio < 1.2 if method == "sltt" else ratio > 3, peaks


def test_sltt_k_backpropagates_exactly_k_steps():
    model, (x, y) = small_net(1024, 256), batch(10)
    steps = sltt.choose_steps(12, 3, np.random.default_rng(0))
    assert len(steps) == 3
    model.zero_grad()
    _, calls = sltt.backward(model, x, y, torch.full((len(y),), 1 / len(y)), steps)
    assert calls == 3 and all(w.grad.abs().sum() > 0 for w in model.weights)
    _, calls = sltt.backward(model, x, y, torch.ones(len(y)))
    assert calls == 12
    # only the chosen steps contribute: the SLTT-K gradient is the sum of the per-step SLTT gradients
    per_step = sum(sltt_grads(model, x, y, {t}) for t in steps)
    assert torch.allclose(sltt_grads(model, x, y, steps), per_step, atol=1e-6)


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_forward_record_is_the_same_for_every_trainer(conv):
    model, (x, y) = small_net(1024, 256, conv), batch(10)
    out = model(x)
    online, _ = sltt.backward(model, x, y, torch.ones(len(y)), {3})
    for a, b in zip(out.spikes + out.drive, online.spikes + online.drive):
        assert torch.equal(a.detach(), b)
