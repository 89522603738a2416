"""The composition of NIR's linear nodes along the path between two neuron nodes into one synapse
(``hardware/graph/linear_ops.py`` has the nodes as operators).

A path that is one convolution or pooling (with flattens, uniform delays and per-channel scales around it), or
two convolutions that compose exactly, stays a convolution (:class:`hardware.graph.ir.Conv`, float kernel): Loihi 2
stores it as a shared kernel. Anything else is composed into one dense matrix (exact, as the unrolled product).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.errors import GraphError
from hardware.graph.ir import Conv, Dense
from hardware.graph.linear_ops import UNROLL_MAX, Op, apply_op, op_matrix

# --- composing two convolutions ---------------------------------------------------------------------------------

def _full_kernel(c: Conv) -> np.ndarray:
    """A grouped kernel as an ungrouped one (zeros between groups): (C_out, C_in, kh, kw)."""
    co, cg, kh, kw = c.weight.shape
    if c.groups == 1:
        return c.weight
    full = np.zeros((co, cg * c.groups, kh, kw))
    per = co // c.groups
    for g in range(c.groups):
        full[g * per:(g + 1) * per, g * cg:(g + 1) * cg] = c.weight[g * per:(g + 1) * per]
    return full


def compose_convs(a: Conv, b: Conv) -> Conv | None:
    """One convolution equal to ``b`` after ``a``, or None when none is exact.

    With no padding in ``b``: stride ``sa * sb``, padding ``pa``, kernel ``K[o, c, r] = sum B[o, m, i] A[m, c, j]``
    over ``r = i db sa + j da``. With padding in ``b``: exact when ``a`` has no padding, windows no wider than its
    stride and an input that its stride divides (a pooling of 2 on an even map, say): the padded rows of ``a``'s
    output then see only the zeros of an input padded by ``pb * sa``."""
    A, B = _full_kernel(a), _full_kernel(b)
    if b.in_shape != a.out_shape:
        return None
    pad = a.padding
    if any(b.padding):
        ok = not any(a.padding) and all(
            (k - 1) * d + 1 <= s and n % s == 0
            for k, d, s, n in zip(A.shape[2:], a.dilation, a.stride, a.in_shape[1:]))
        if not ok:
            return None
        pad = tuple(pb * sa for pb, sa in zip(b.padding, a.stride))
    size = [(kb - 1) * db * sa + (ka - 1) * da + 1
            for kb, db, sa, ka, da in zip(B.shape[2:], b.dilation, a.stride, A.shape[2:], a.dilation)]
    K = np.zeros((B.shape[0], A.shape[1], *size))
    for i in range(B.shape[2]):
        for j in range(B.shape[3]):
            for p in range(A.shape[2]):
                for q in range(A.shape[3]):
                    r = i * b.dilation[0] * a.stride[0] + p * a.dilation[0]
                    s = j * b.dilation[1] * a.stride[1] + q * a.dilation[1]
                    K[:, :, r, s] += B[:, :, i, j] @ A[:, :, p, q]
    out = Conv(K, 0, a.in_shape, (a.stride[0] * b.stride[0], a.stride[1] * b.stride[1]), tuple(pad))
    return out if out.out_shape == b.out_shape else None


def fold_scale(c: Conv, scale: np.ndarray) -> Conv | None:
    """A per-element scale after a convolution folds into its kernel when it is one value per output channel."""
    per = scale.reshape(c.out_shape[0], -1)
    if not np.all(per == per[:, :1]):
        return None
    return Conv(c.weight * per[:, 0, None, None, None], 0, c.in_shape, c.stride, c.padding, c.dilation, c.groups)


# --- a path between two neuron nodes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Synapse:
    """A composed path: the float synapse (Dense or Conv), its delay in seconds (scalar, or per (out, in) for a
    dense synapse) and the biases it carries (each: per-output vector and delay in seconds)."""
    synapse: Dense | Conv
    delay: float | np.ndarray
    biases: tuple[tuple[np.ndarray, float], ...]


def _uniform(d: np.ndarray) -> bool:
    return bool(np.all(d == d.flat[0]))


def compose(ops: list[Op], n_in: int) -> Synapse:
    """Compose the ops of a path (in order) into one synapse; biases run through the ops after them."""
    biases = []
    for k, op in enumerate(ops):
        if op.bias is not None:
            b, d = op.bias[None], 0.0
            for later in ops[k + 1:]:
                b = apply_op(later, b)
                if later.delay is not None:
                    if not _uniform(later.delay):
                        raise GraphError(f"node {later.name!r}: per-element delays after the bias of "
                                         f"{op.name!r} cannot be expressed as synaptic delays")
                    d += float(later.delay.flat[0])
            biases.append((b[0], d))
    linear = [op for op in ops if op.linear]
    delays = [op for op in ops if op.delay is not None]
    if all(_uniform(op.delay) for op in delays):
        conv = _as_conv(linear)
        if conv is not None:
            return Synapse(conv, sum(float(op.delay.flat[0]) for op in delays), tuple(biases))
    return _as_dense(ops, n_in, tuple(biases))


def _as_conv(linear: list[Op]) -> Conv | None:
    """The linear ops of a path as one convolution, if they are convolutions (and per-channel scales after one)."""
    if not linear or linear[0].conv is None:
        return None
    c = linear[0].conv
    for op in linear[1:]:
        if op.conv is not None:
            c = compose_convs(c, op.conv)
        elif op.scale is not None and c is not None:
            c = fold_scale(c, op.scale)
        else:
            return None
        if c is None:
            return None
    return c


def _as_dense(ops: list[Op], n_in: int, biases) -> Synapse:
    """Everything unrolled into one matrix; a per-element delay before any matrix acts per input, one after a
    matrix per output, and then each output must see one delay per input path to stay expressible."""
    mat, pre, post = None, np.zeros(n_in), None
    for op in ops:
        m = op_matrix(op) if op.linear else None
        if m is not None:
            if mat is not None and m.shape[1] * mat.shape[1] * m.shape[0] > 4 * UNROLL_MAX:
                raise GraphError(f"node {op.name!r}: the path is too large to compose into one matrix")
            if post is not None:
                post = np.array([_one_delay(op.name, post[np.flatnonzero(row)]) for row in m])
            mat = m if mat is None else m @ mat
        if op.delay is not None:
            if mat is None:
                pre = pre + op.delay
            else:
                post = op.delay if post is None else post + op.delay
    mat = np.eye(n_in) if mat is None else mat
    delay = pre[None, :] + (0 if post is None else post[:, None])
    if _uniform(delay):
        delay = float(delay.flat[0])
    return Synapse(Dense(mat, 0), delay, biases)


def _one_delay(name: str, seen: np.ndarray) -> float:
    values = np.unique(seen)
    if len(values) > 1:
        raise GraphError(f"node {name!r}: an output mixes inputs with different delays; that cannot be "
                         "expressed as synaptic delays")
    return float(values[0]) if len(values) else 0.0
