"""Eligibility traces for online training: the temporal route through a layer's own neuron state, kept forward.

SLTT (``pipeline/train/sltt.py``) detaches the state (u, v) carried between steps, so a weight learns only from
the input of the step it is judged at. Our CUBA neuron integrates twice (the current u, then the voltage v), and
what BPTT credits a weight with is the input the voltage has integrated. Between resets, and with the straight-
through truncation of the decays (identity gradient), v is linear in the synaptic inputs a:

    dv_t / da_tau = 64 * h(t - tau),     h(k) = sum_{i=0..k} k_u^i k_v^(k-i),   k_u, k_v = keep / 4096

so the exact derivative of v_t with respect to a weight W_ij of ``a = shift(W (*) x, e)`` is
``64 * 2^e * E_t`` with E the input filtered by the layer's own two decays (OTTT's presynaptic trace, Xiao et
al. 2022; e-prop's eligibility vector for a LIF neuron, Bellec et al. 2020, with our neuron's two stages):

    U_t = k_u U_{t-1} + x_t,     E_t = k_v E_{t-1} + U_t                           (per input, O(1) in T)

The weight gradient at step t is then ``delta_t (*) E_t`` (delta_t the gradient reaching a_t through step t's
spatial path, the neuron's surrogate derivative included), where SLTT takes ``delta_t (*) x_t``. What the trace
does not carry, and so what this still approximates: the reset (a spike sets v to 0 and with it the memory of
past inputs, per postsynaptic neuron; a per-synapse trace would cost (out x in) per sample, a conv's more than
its activations), the saturation of v before step t, and the temporal routes between layers (a spike at step
tau reaching the layer above at every later step through that layer's state). Our own: OTTT's reference code
(github.com/pkuxmq/OTTT-SNN) traces a one-stage LIF and has no integer state.

:class:`Traced` is the synapse with that gradient: its value is the synaptic input of the real spikes x (so the
forward is the model's, bit for bit), its weight gradient uses the trace E, its input gradient is the synapse's
transpose as usual (the spatial path to the layer below).
"""
from __future__ import annotations

import torch
from torch.nn import grad as nn_grad

from models.neuron import DECAY_SHIFT, CubaParams
from models.quant import shift_train


def keeps(p: CubaParams) -> tuple[float, float]:
    """The gradient of one step of decay of u and of v (``keep / 4096``, the truncation straight through)."""
    return p.u_keep / (1 << DECAY_SHIFT), p.v_keep / (1 << DECAY_SHIFT)


def trace_step(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, p: CubaParams):
    """One step of the trace of inputs x (B, ...): ``(E_t, (U_t, E_t))`` from the carried (U, E) (None: zeros)."""
    with torch.no_grad():
        if state is None:
            return x.clone(), (x.clone(), x.clone())
        ku, kv = keeps(p)
        u = torch.add(x, state[0], alpha=ku)
        e = torch.add(u, state[1], alpha=kv)
    return e, (u, e)


def trace_window(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, p: CubaParams):
    """The trace E (B, W, ...) of inputs x (B, W, ...) over a window, from the carried (U, E), and the new state."""
    out = torch.empty_like(x)
    for i in range(x.shape[1]):
        out[:, i], state = trace_step(x[:, i], state, p)
    return out, state


def dense(q: torch.Tensor, x: torch.Tensor, trace: torch.Tensor, exp: int) -> torch.Tensor:
    """``shift(x @ q.T, e)`` whose weight gradient is the trace's (:class:`Traced`)."""
    return Traced.apply(q, x, trace, None, exp, lambda w, s: shift_train(s @ w.T, exp))


class Traced(torch.autograd.Function):
    """``shift(W (*) x, e)`` with the weight gradient taken from the trace: value from ``x``, d/dW from
    ``trace``, d/dx through W. ``conv``: the layer's ConvShape, or None for a dense layer (x, trace (M, in))."""

    @staticmethod
    def forward(ctx, q, x, trace, conv, exp, synapse):
        ctx.save_for_backward(q, trace)
        ctx.conv, ctx.exp, ctx.x_shape = conv, exp, x.shape
        with torch.no_grad():
            return synapse(q, x)

    @staticmethod
    def backward(ctx, grad):
        q, trace = ctx.saved_tensors
        g = grad * 2.0 ** ctx.exp             # shift_train: a scale (its floor is straight through)
        c = ctx.conv
        if c is None:
            gw = g.T @ trace.reshape(g.shape[0], -1)
            gx = (g @ q).reshape(ctx.x_shape) if ctx.needs_input_grad[1] else None
            return gw, gx, None, None, None, None
        g = g.reshape(-1, *c.out_shape)
        tr = trace.reshape(-1, *c.in_shape)
        gw = nn_grad.conv2d_weight(tr, q.shape, g, stride=c.stride, padding=c.padding)
        gx = None
        if ctx.needs_input_grad[1]:
            gx = nn_grad.conv2d_input(tr.shape, q, g, stride=c.stride, padding=c.padding).reshape(ctx.x_shape)
        return gw, gx, None, None, None, None
