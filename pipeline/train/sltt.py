"""SLTT and SLTT-K (Meng et al., ICCV 2023): backward inside the time loop, so memory does not grow with T.

SLTT ignores the temporal route of backpropagation: the neuron state (u, v) carried from one step to the next is
detached, and the loss is per step. With ``traced`` (train.traces, the default) the backward inside each chunk of
time is BPTT's through every layer's own state and the input's eligibility traces carry the earlier steps into
the chunk (``pipeline/train/traces.py``): memory grows with the chunk (train.window), not with T. Two adaptations
to our network, both ours (the official code, github.com/qymeng94/SLTT, uses a non-spiking readout and no
synaptic delay):

- Per-step loss on the spike-count readout: ``CE(c_t, y) / n_steps`` with ``c_t = c_{t-1} (detached) + s_t``,
  the output spikes counted so far; at the last step ``c_t`` is the count that decides the class.
- Lava's one-step synaptic delay: layer l's spikes at step tau reach the output at step tau + (depth - 1 - l),
  so the "spatial" path of the loss at output step t runs diagonally through time.

How it runs (ours; what makes it fast on a CPU). Time is cut into chunks of ``chunk`` output steps, and layer l
runs the chunk's steps shifted back by its lag ``depth - 1 - l``: every diagonal path of a chunk's losses then lies
inside the chunk, so one backward per chunk gives exactly the per-step SLTT gradient, and the retained graph is
bounded by the chunk, not by T. Within a chunk each layer's synapse (the convolution) is one batched call over the
chunk's steps. With the state detached, a neuron's step has the local derivative
``ds/da = 64 / theta * sigma'(z) * [v not clamped]`` (sigma' snnTorch's fast-sigmoid derivative): the step loop
runs without a graph and keeps only that factor, and the spikes enter the graph as
``s + (a - a.detach()) * factor`` (the value s, the gradient factor * da). This replaces ten autograd nodes per
neuron step with one product per layer and chunk.

SLTT-K backpropagates only the loss at K output steps drawn among the T steps that input can reach
(``depth .. n_steps - 1``; the first ``depth`` output steps see no input). The chunk runs without a graph and the
K diagonals are replayed with one: each layer's synapse on the stored input of its diagonal step, batched over
the K steps. The loss is not rescaled by n/K, as in the official code. Weight quantisation (a straight-through
function) runs once per batch: its output is a leaf that collects the gradients of every chunk, pushed through
the quantiser to the float weights at the end.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from models.neuron import DECAY_SHIFT, STATE_SHIFT, CubaParams
from models.quant import quantize_weights
from models.snn import SNN, WEIGHT_SCALE
from pipeline.train.traces import Traced, WindowSpikes, advance, keeps, states_before

CHUNK = 4       # output steps per backward call (train.window): steady-state memory from T = 8 (benchmarks/training.py)


@dataclass(frozen=True)
class Record:
    """What training keeps of an online forward pass, every tensor detached: the output spike counts (B, classes)
    and, O(n_steps) per sample, what SADP's score needs: the output spikes and drive (B, n_steps, classes) and the
    penultimate layer's spike count per step (B, n_steps) (None where the trainer was asked not to record)."""
    output_spikes: torch.Tensor | None
    output_drive: torch.Tensor | None
    hidden_counts: torch.Tensor | None
    counts: torch.Tensor


def neuron_window(a: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], p: CubaParams, slope: float):
    """The CUBA steps of one layer over a window, without a graph: synaptic input a (B, W, N) and the carried state
    -> spikes, drive z = (v - theta) / theta and the SLTT factor ds/da (each (B, W, N)), the new state, and where
    v was inside its clamp (B, W, N).

    The same arithmetic as ``models.neuron.cuba_step_train`` (tests/test_sltt.py compares records and gradients):
    the loop does only what the next step needs, in place; the drive and the factor are computed once for the
    window from the stored pre-clamp voltages."""
    theta = max(p.theta, 1)
    ku, kv = p.u_keep / (1 << DECAY_SHIFT), p.v_keep / (1 << DECAY_SHIFT)
    with torch.no_grad():
        drive = a * (1 << STATE_SHIFT)            # the scaled input now, the voltages before the clamp below
        spikes = torch.empty_like(a)
        u, v = state
        for i in range(a.shape[1]):
            u = torch.mul(u, ku).trunc_().add_(drive[:, i])
            v = torch.mul(v, kv).trunc_().add_(u)
            if p.bias:
                v.add_(p.bias)
            drive[:, i] = v
            v.clamp_(-p.state_max + 1, p.state_max - 1)
            fired = v > theta
            spikes[:, i] = fired
            v.masked_fill_(fired, 0.0)
        clamped = drive.clamp(-p.state_max + 1, p.state_max - 1)
        inside = drive == clamped                 # clamp passes the gradient inside its range only
        drive = clamped.sub_(theta).div_(theta)
        factor = drive.abs().mul_(slope).add_(1.0).pow_(-2).mul_((1 << STATE_SHIFT) / theta).mul_(inside)
    return spikes, drive, factor, (u, v), inside


class _Spikes(torch.autograd.Function):
    """Value ``spikes``, gradient ``factor * grad`` to the synaptic input ``a``: the neuron's local derivative."""

    @staticmethod
    def forward(ctx, a, spikes, factor):
        ctx.save_for_backward(factor)
        return spikes.view_as(spikes)

    @staticmethod
    def backward(ctx, grad):
        (factor,) = ctx.saved_tensors
        return grad * factor, None, None


def _input_steps(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Input spikes (B, hi - lo, C, H, W), float, for steps lo..hi-1: bin t's events arrive at layer 0 at step
    t + 1, so step tau carries bin tau - 1; zero before the first bin and after the last."""
    B, T = x.shape[:2]
    out = x.new_zeros((B, hi - lo, *x.shape[2:]), dtype=torch.float32)
    first, last = max(lo - 1, 0), min(hi - 1, T)
    if last > first:
        out[:, first + 1 - lo:last + 1 - lo] = x[:, first:last].clamp(max=1).float()
    return out


@dataclass
class _Window:
    """One chunk of time, per layer: its input, spikes and SLTT factors (None before the layer starts), the step
    its window starts at, the last layer's spikes with their graph (online SLTT), and for SLTT-K with traces the
    input's trace state before each step (B, W, 2, ...), the layer's spikes of the step before each step and
    where v stayed inside its clamp."""
    inputs: list
    values: list
    factors: list
    starts: list
    src: torch.Tensor | None
    traces: list
    before: list
    inside: list


def _synapse(model: SNN, l: int, q: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
    """Layer l's synaptic input (B, W, N) from inputs (B, W, ...)."""
    B, W = inp.shape[:2]
    return model.synapse(l, q, inp.reshape(B * W, *inp.shape[2:])).reshape(B, W, -1)


def _boundary(model: SNN, l: int, q: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Zeros (B, 2, N) whose backward gives layer l's weight the gradient of its synapse applied to ``prior``, the
    trace state (U, E) (B, 2, ...) before a window (:class:`WindowSpikes`)."""
    B = prior.shape[0]
    flat = prior.reshape(B * 2, *prior.shape[2:])
    conv = model.convs[l] if l < len(model.convs) else None
    zeros = lambda w, x: x.new_zeros(x.shape[0], model.out_size(l))          # noqa: E731
    return Traced.apply(q, flat, flat, conv, model.weight_exp, zeros).reshape(B, 2, -1)


@dataclass
class _Carry:
    """What each layer carries from one chunk to the next: its neuron state (u, v), its input's trace state (U, E)
    (None: not yet, or without traces), its spikes of the last step run (None: not yet)."""
    state: list
    traces: list | None
    lasts: list


def _forward_chunk(model: SNN, x: torch.Tensor, leaves: list, carry: _Carry, span: tuple[int, int], online: bool,
                   out: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> _Window:
    """Every layer over output steps ``span`` (layer l lags the output by L - 1 - l steps); updates ``carry`` and
    writes the readout's spikes and drive and the last hidden layer's spike count into ``out``."""
    (c0, c1), L, B, dev = span, model.depth, x.shape[0], x.device
    state, traces, lasts = carry.state, carry.traces, carry.lasts
    out_spikes, out_drive, hidden = out
    w = _Window([], [], [], [], None, [], [], [])
    src = None
    for l in range(L):
        lag = L - 1 - l
        a_lo, a_hi = max(0, c0 - lag), max(0, c1 - lag)
        if a_hi == a_lo:              # this layer has not started yet
            w.inputs.append(None), w.values.append(None), w.factors.append(None), w.starts.append(a_lo)
            w.traces.append(None), w.before.append(None), w.inside.append(None)
            src = None
            continue
        if l == 0:
            inp = _input_steps(x, a_lo, a_hi)
        elif a_lo == 0:               # step 0 receives nothing; the layer below ran steps 0..a_hi-2
            zero = torch.zeros(B, 1, model.in_size(l), device=dev)
            inp = zero if src is None else torch.cat([zero, src], dim=1)
        else:
            inp = src
        tr = boundary = None
        if traces is not None and online:     # exact inside the window, the traces across its start
            prior, traces[l] = traces[l], advance(inp.detach(), traces[l], model.neurons[l])
            if prior is not None:            # only its weight gradient is used: no forward computed
                boundary = _boundary(model, l, leaves[l], torch.stack(prior, dim=1))
        elif traces is not None:              # SLTT-K: the replayed steps learn from the traces
            tr, traces[l] = states_before(inp.detach(), traces[l], model.neurons[l])
        with torch.set_grad_enabled(online):
            a = _synapse(model, l, leaves[l], inp)
        s, z, fac, state[l], inside = neuron_window(a.detach(), state[l], model.neurons[l], model.slope)
        if online and traces is not None:
            src = WindowSpikes.apply(a, boundary, s, fac, inside, lasts[l], keeps(model.neurons[l]))
        else:
            src = _Spikes.apply(a, s, fac) if online else s
        if tr is not None:
            first = lasts[l][:, None] if lasts[l] is not None else torch.zeros_like(s[:, :1])
            w.before.append(torch.cat([first, s[:, :-1]], dim=1)), w.inside.append(inside)
        else:
            w.before.append(None), w.inside.append(None)
        lasts[l] = s[:, -1]
        w.inputs.append(inp), w.values.append(s), w.factors.append(fac), w.starts.append(a_lo)
        w.traces.append(tr)
        if l == L - 2:
            hidden[:, a_lo:a_hi] = s.sum(dim=2)
        if l == L - 1:
            out_spikes[:, a_lo:a_hi], out_drive[:, a_lo:a_hi] = s, z
    w.src = src
    return w


def _replay(model: SNN, leaves: list, chosen: list[int], w: _Window) -> torch.Tensor:
    """SLTT-K: the chosen output steps' diagonals replayed with a graph, from the chunk's stored inputs."""
    L, k, g = model.depth, len(chosen), None
    B = w.values[-1].shape[0]
    for l in range(L):
        pos = [t - (L - 1 - l) - w.starts[l] for t in chosen]
        inp = w.inputs[l][:, pos] if g is None else g
        a = _synapse(model, l, leaves[l], inp)
        if w.traces[l] is None:
            g = _Spikes.apply(a, w.values[l][:, pos], w.factors[l][:, pos])
            continue
        # with traces: each replayed step is a window of one step, its trace state before it as the boundary
        one = lambda t: t[:, pos].reshape(B * k, 1, -1)                       # noqa: E731
        prior = w.traces[l][:, pos].reshape(B * k, 2, *w.traces[l].shape[3:])
        g = WindowSpikes.apply(a.reshape(B * k, 1, -1), _boundary(model, l, leaves[l], prior),
                               one(w.values[l]), one(w.factors[l]), one(w.inside[l]),
                               w.before[l][:, pos].reshape(B * k, -1), keeps(model.neurons[l])).reshape(B, k, -1)
    return g


def backward(model: SNN, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
             steps: set[int] | None = None, chunk: int = CHUNK, traced: bool = False) -> tuple[Record, int]:
    """Run one batch forward, calling backward once per chunk of time; gradients accumulate in the model's weights.

    ``steps``: the output steps whose loss is backpropagated (None = all, SLTT). ``weights``: per-example loss
    weights that already include the batch normalisation (1 / B for a plain mean): the loss of step t is
    ``sum(weights * CE(c_t, y)) / n_steps``. ``traced``: each weight learns from its input's eligibility trace
    (pipeline/train/traces.py) instead of the step's input. The per-step records are always kept (a conv
    layer's activations in a chunk are far larger). Returns the :class:`Record` and the number of backward calls
    made.
    """
    L = model.depth
    B, T = x.shape[:2]
    n = T + L
    if steps is not None and min(steps, default=L) < L - 1:
        raise ValueError(f"SLTT-K steps {sorted(steps)}: output steps before {L - 1} have no diagonal path")
    qs = [quantize_weights(w, WEIGHT_SCALE) for w in model.weights]
    leaves = [q.detach().requires_grad_(True) for q in qs]
    dev = x.device
    carry = _Carry([(torch.zeros(B, model.out_size(l), device=dev),) * 2 for l in range(L)],
                   [None] * L if traced else None, [None] * L)
    out_spikes = torch.zeros(B, n, model.out_size(L - 1), device=dev)
    out_drive = torch.zeros_like(out_spikes)
    hidden = torch.zeros(B, n, device=dev)
    count = torch.zeros(B, model.out_size(L - 1), device=dev)
    calls = 0
    for c0 in range(0, n, chunk):
        c1 = min(c0 + chunk, n)
        chosen = list(range(c0, c1)) if steps is None else sorted(t for t in steps if c0 <= t < c1)
        online = steps is None            # full SLTT: the chunk's graph is built as it runs
        window = _forward_chunk(model, x, leaves, carry, (c0, c1), online, (out_spikes, out_drive, hidden))
        s_out = out_spikes[:, c0:c1]
        before = count[:, None] + torch.cumsum(s_out, dim=1) - s_out        # c_{t-1}, detached
        count = count + s_out.sum(dim=1)
        if not chosen:
            continue
        idx = [t - c0 for t in chosen]
        graph_out = window.src[:, idx] if online else _replay(model, leaves, chosen, window)
        logits = before[:, idx] + graph_out
        ce = F.cross_entropy(logits.flatten(0, 1), y.repeat_interleave(len(idx)), reduction="none")
        loss = (weights.repeat_interleave(len(idx)) * ce).sum() / n
        if loss.requires_grad:
            loss.backward()
            calls += 1
    grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
    torch.autograd.backward(qs, grads)
    return Record(out_spikes, out_drive, hidden, count), calls


def choose_steps(n_bins: int, depth: int, k: int, rng: np.random.Generator) -> set[int]:
    """K distinct output steps for SLTT-K, uniformly among the n_bins steps input can reach (depth .. depth +
    n_bins - 1)."""
    return set((depth + rng.choice(n_bins, size=min(k, n_bins), replace=False)).tolist())
