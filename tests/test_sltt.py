"""SLTT and SLTT-K: gradients against BPTT and against a step-by-step autograd SLTT, a retained graph bounded in
T, exactly K backpropagated steps."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hardware.chip.loihi2 import Limits
from models.neuron import CubaParams, cuba_step_train
from models.quant import quantize_weights
from models.snn import SNN, WEIGHT_SCALE, ConvShape, pad_input
from pipeline.train import memory, sltt

STATE_BITS = Limits().state_bits   # the chip's u and v width, given to the model


def small_net(du: int, dv: int, conv: bool = False) -> SNN:
    gen = torch.Generator().manual_seed(0)
    if conv:
        return SNN((2, 6, 6), (ConvShape((2, 6, 6), 4, 3, 2, 1),), (36, 5), (CubaParams(du, dv, 30, state_bits=STATE_BITS),) * 2, 0, gen,
                   init_std=(60.0, 40.0))
    return SNN((2, 6, 6), (), (72, 40, 5), (CubaParams(du, dv, 30, state_bits=STATE_BITS), CubaParams(du, dv, 30, state_bits=STATE_BITS)), 0, gen,
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


def stepwise_sltt_grads(model: SNN, x, y, steps=None) -> torch.Tensor:
    """SLTT written the plain way: every layer stepped with autograd, the state detached after each step, the
    per-step loss on c_{t-1} (detached) + s_t; one backward at the end over the whole (state-detached) graph."""
    inp = pad_input(x, model.depth).float().flatten(2)
    B, n, _ = inp.shape
    qs = [quantize_weights(w, WEIGHT_SCALE) for w in model.weights]
    prev = [torch.zeros(B, model.in_size(l)) for l in range(model.depth)]
    state = [(torch.zeros(B, model.out_size(l)),) * 2 for l in range(model.depth)]
    count, total = 0, 0
    for t in range(n):
        src = inp[:, t]
        for l, p in enumerate(model.neurons):
            s, u, v = cuba_step_train(model.synapse(l, qs[l], prev[l]), *state[l], p, model.spike_fn)
            state[l], prev[l], src = (u.detach(), v.detach()), src, s
        if steps is None or t in steps:
            total = total + F.cross_entropy(count + src, y) / n
        count = count + src.detach()
    return flat(torch.autograd.grad(total, list(model.weights)))


@pytest.mark.parametrize("chunk", [1, 3, 8, 64])
@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_chunked_sltt_is_the_stepwise_sltt_gradient(conv, chunk):
    """The fused, chunked implementation computes exactly the per-step SLTT gradient, for SLTT and SLTT-K."""
    model, (x, y) = small_net(1024, 256, conv), batch(10)
    for steps in (None, {4, 7, 11}):
        model.zero_grad()
        sltt.backward(model, x, y, torch.full((len(y),), 1 / len(y)), steps, chunk=chunk)
        ours, plain = flat([w.grad for w in model.weights]), stepwise_sltt_grads(model, x, y, steps)
        assert plain.abs().max() > 0
        assert torch.allclose(ours, plain, rtol=1e-4, atol=1e-6), (steps, (ours - plain).abs().max())


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
        with memory.SavedTensorMeter() as meter:
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
    steps = sltt.choose_steps(10, model.depth, 3, np.random.default_rng(0))
    assert len(steps) == 3 and all(model.depth <= t < 10 + model.depth for t in steps)   # steps input reaches
    model.zero_grad()
    _, calls = sltt.backward(model, x, y, torch.full((len(y),), 1 / len(y)), steps, chunk=1)
    assert calls == 3 and all(w.grad.abs().sum() > 0 for w in model.weights)
    _, calls = sltt.backward(model, x, y, torch.ones(len(y)), chunk=1)
    assert calls == 12
    _, calls = sltt.backward(model, x, y, torch.ones(len(y)), chunk=8)
    assert calls == 2
    # only the chosen steps contribute: the SLTT-K gradient is the sum of the per-step SLTT gradients
    per_step = sum(sltt_grads(model, x, y, {t}) for t in steps)
    assert torch.allclose(sltt_grads(model, x, y, steps), per_step, atol=1e-6)
    # replaying every diagonal (SLTT-K with all steps) is SLTT
    assert torch.allclose(sltt_grads(model, x, y, set(range(model.depth - 1, 12))), sltt_grads(model, x, y),
                          atol=1e-6)


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_forward_record_is_the_same_for_every_trainer(conv):
    model, (x, y) = small_net(1024, 256, conv), batch(10)
    out = model(x)
    for steps in (None, {3}):
        rec, _ = sltt.backward(model, x, y, torch.ones(len(y)), steps, chunk=3)
        assert torch.equal(out.spikes[-1], rec.output_spikes) and torch.equal(out.drive[-1], rec.output_drive)
        # the penultimate layer's last step reaches no output step: it is not run
        assert torch.equal(out.spikes[-2].sum(dim=2)[:, :-1], rec.hidden_counts[:, :-1])
