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

Where each trainer uses it:

- the recurrent trainer (``sltt_recurrent.py``), one step at a time: each input and recurrent weight learns from
  ``delta_t (*) E_t`` (:func:`dense`, :class:`Traced`: the synapse whose value is that of the real spikes x, so
  the forward is the model's bit for bit, and whose weight gradient uses the trace);
- the conv/dense trainer (``sltt.py``), a window of steps at a time: inside the window the backward is BPTT's
  through each layer's own state, resets included (:class:`WindowSpikes`), and the trace state (U, E) before the
  window carries every earlier input into it (the window's boundary), so only resets before the window and routes
  between layers across its start are lost;
- SLTT-K: each replayed step is a window of one step, with the trace state before it as its boundary.
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
        if state is None:                     # U = E = x (neither is written to in place)
            e = x.clone()
            return e, (e, e)
        ku, kv = keeps(p)
        u = torch.add(x, state[0], alpha=ku)
        e = torch.add(u, state[1], alpha=kv)
    return e, (u, e)


def states_before(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, p: CubaParams):
    """The trace state (U, E) before each step of inputs x (B, W, ...), stacked (B, W, 2, ...), from the carried
    state (None: zeros), and the state after the window."""
    out = x.new_zeros(x.shape[0], x.shape[1], 2, *x.shape[2:])
    for i in range(x.shape[1]):
        if state is not None:
            out[:, i, 0], out[:, i, 1] = state
        _, state = trace_step(x[:, i], state, p)
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
        g = grad * 2.0 ** ctx.exp if ctx.exp else grad     # shift_train: a scale (its floor is straight through)
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


def advance(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, p: CubaParams):
    """The trace state after inputs x (B, W, ...), from ``state`` (None: zeros), in closed form: one weighted
    sum over the window for each of U and E (the recurrences unrolled)."""
    ku, kv = keeps(p)
    W = x.shape[1]
    wu = [ku ** (W - 1 - i) for i in range(W)]
    we = [sum(kv ** (W - 1 - t) * ku ** (t - i) for t in range(i, W)) for i in range(W)]
    with torch.no_grad():
        coeffs = x.new_tensor([wu, we])                                   # (2, W)
        B = x.shape[0]
        u, e = torch.matmul(coeffs, x.reshape(B, W, -1)).reshape(B, 2, *x.shape[2:]).unbind(1)   # (B, ...) each
        if state is not None:
            u = u + ku ** W * state[0]
            e = e + kv ** W * state[1] + sum(kv ** (W - 1 - t) * ku ** (t + 1) for t in range(W)) * state[0]
    return u, e


class WindowSpikes(torch.autograd.Function):
    """A layer's spikes over a window with the exact backward through its own state inside the window.

    Value: the spikes s (B, W, N). Backward, from g_t = dL/ds_t, the recurrences of BPTT through the CUBA step
    (the reset's spike detached, as models/neuron.py trains; f_t = ds_t/dv_t, m_t = 1 where v_t is inside the
    clamp, f_t including it):

        G^v_t = f_t g_t + m_t k_v (1 - s_t) G^v_{t+1},    G^u_t = G^v_t + k_u G^u_{t+1},    dL/da_t = 64 G^u_t

    from zero after the window's last step. ``boundary`` (B, 2, N), when given, is the synapse applied to the
    trace state (U, E) of the inputs before the window: the state the window starts from depends on them through
    u (exactly, u has no reset) and through v (resets before the window ignored), so it receives
    ``64 k_u G^u_0`` and ``64 k_v (1 - s_prev) G^v_0``.
    """

    @staticmethod
    def forward(ctx, a, boundary, s, factor, inside, s_prev, keep):
        ctx.save_for_backward(s, factor, inside, s_prev)
        ctx.keep, ctx.has_boundary = keep, boundary is not None
        return s.view_as(s)

    @staticmethod
    def backward(ctx, g):
        s, factor, inside, s_prev = ctx.saved_tensors
        ku, kv = ctx.keep
        local = g * factor                              # 64 f_t g_t: SLTT's dL/da_t
        carry = torch.where(inside & (s == 0), kv, 0.0)  # m_t k_v (1 - s_t)
        da = torch.empty_like(g)
        gv = gu = torch.zeros_like(g[:, 0])             # 64 G^v, 64 G^u
        for i in range(g.shape[1] - 1, -1, -1):
            gv = torch.addcmul(local[:, i], carry[:, i], gv)
            gu = torch.add(gv, gu, alpha=ku)
            da[:, i] = gu
        boundary = None
        if ctx.has_boundary:
            boundary = torch.stack([ku * gu, kv * (1 - s_prev) * gv], dim=1)
        return da, boundary, None, None, None, None, None
