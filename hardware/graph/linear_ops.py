"""NIR's linear nodes (Affine, Linear, Conv1d/2d, SumPool2d, AvgPool2d, Scale, Flatten, Delay) as operators on
flattened vectors, and their composition along the path between two neuron nodes into one synapse.

A path that is one convolution or pooling (with flattens, uniform delays and per-channel scales around it), or
two convolutions that compose exactly, stays a convolution (:class:`hardware.graph.ir.Conv`, float kernel): Loihi 2
stores it as a shared kernel. Anything else is composed into one dense matrix (exact, as the unrolled product).
Written on numpy: ``hardware/`` does not import torch; ``tests/test_verify.py`` checks the matrices and the
compositions against PyTorch's and against each other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import nir
import numpy as np

from hardware.errors import GraphError
from hardware.graph.conv import conv2d
from hardware.graph.ir import Conv, Dense

UNROLL_MAX = 50_000_000        # entries of an unrolled matrix (float64: 400 MB) before we refuse


@dataclass(frozen=True)
class Op:
    """One linear node on a flat vector: a convolution (``conv``, float kernel), a matrix, a per-element
    scale, a per-element delay in seconds, or a reshape (none of these set). ``bias`` is added to its output."""
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    conv: Conv | None = None
    matrix: np.ndarray | None = None
    scale: np.ndarray | None = None
    delay: np.ndarray | None = None
    bias: np.ndarray | None = None

    @property
    def linear(self) -> bool:
        return self.conv is not None or self.matrix is not None or self.scale is not None


def _pair(v, k: int = 2) -> tuple[int, ...]:
    v = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return tuple(v * k if len(v) == 1 else v)


def _padding(pad, k, dilation, n: int) -> tuple[int, ...]:
    """Symmetric padding per spatial dim from an int/tuple or PyTorch's 'valid'/'same' (stride 1)."""
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            return (0,) * n
        if pad == "same":
            if any(d * (kk - 1) % 2 for kk, d in zip(k, dilation)):
                raise GraphError(f"padding 'same' with an even kernel {tuple(k)} pads unevenly; Loihi 2's "
                                 "convolution pads both sides alike")
            return tuple(d * (kk - 1) // 2 for kk, d in zip(k, dilation))
        raise GraphError(f"padding {pad!r} is not understood")
    return _pair(pad, n)


def _conv_op(name: str, node, shape) -> Op:
    two = isinstance(node, nir.Conv2d)
    kind = type(node).__name__
    if len(shape) != (3 if two else 2):
        raise GraphError(f"node {name!r} ({kind}): input shape {shape} is not (C, {'H, W' if two else 'L'})")
    w = np.asarray(node.weight, dtype=np.float64)
    k = 2 if two else 1
    stride, dil = _pair(node.stride, k), _pair(node.dilation, k)
    pad = _padding(node.padding, w.shape[2:], dil, k)
    in_shape = tuple(shape) if two else (shape[0], 1, shape[1])
    if not two:                         # a 1-D convolution is a 2-D one of height 1
        w, stride, dil, pad = w[:, :, None], (1,) + stride, (1,) + dil, (0,) + pad
    groups = int(np.asarray(node.groups).ravel()[0])
    if in_shape[0] != w.shape[1] * groups or w.shape[0] % groups:
        raise GraphError(f"node {name!r} ({kind}): weight {w.shape} with groups {groups} does not take "
                         f"{in_shape[0]} channels")
    conv = Conv(w, 0, in_shape, stride, pad, dil, groups)
    _check_fits(name, kind, conv)
    out = conv.out_shape if two else (conv.out_shape[0], conv.out_shape[2])
    bias = getattr(node, "bias", None)
    b = None
    if bias is not None and np.any(bias):
        b = np.repeat(np.broadcast_to(np.asarray(bias, dtype=np.float64).ravel(), (out[0],)), math.prod(out[1:]))
    return Op(name, tuple(shape), out, conv=conv, bias=b)


def _check_fits(name: str, kind: str, conv: Conv) -> None:
    _, ho, wo = conv.out_shape
    if ho < 1 or wo < 1:
        raise GraphError(f"node {name!r} ({kind}): a {conv.weight.shape[2]} x {conv.weight.shape[3]} kernel "
                         f"(dilation {conv.dilation}, padding {conv.padding}) does not fit the "
                         f"{conv.in_shape[1]} x {conv.in_shape[2]} input")


def _pool_op(name: str, node, shape) -> Op:
    """Sum (or average) pooling: a grouped convolution with a kernel of ones (or 1 / k^2), one group per channel.
    Average pooling counts padded zeros, as PyTorch's default does."""
    kind = type(node).__name__
    if len(shape) != 3:
        raise GraphError(f"node {name!r} ({kind}): input shape {shape} is not (C, H, W)")
    ks, st = _pair(node.kernel_size), _pair(node.stride)
    value = 1.0 / (ks[0] * ks[1]) if isinstance(node, nir.AvgPool2d) else 1.0
    conv = Conv(np.full((shape[0], 1, *ks), value), 0, tuple(shape), st, _padding(node.padding, ks, (1, 1), 2),
                (1, 1), shape[0], pool="sum" if value == 1.0 else "avg")
    _check_fits(name, kind, conv)
    return Op(name, tuple(shape), conv.out_shape, conv=conv)


def _dense_op(name: str, node, shape) -> Op:
    n = math.prod(shape)
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n:
        raise GraphError(f"node {name!r} ({type(node).__name__}): weight {w.shape} does not take {n} inputs")
    b = None
    if isinstance(node, nir.Affine) and np.any(node.bias):
        b = np.broadcast_to(np.asarray(node.bias, dtype=np.float64).ravel(), (w.shape[0],)).copy()
    return Op(name, tuple(shape), (w.shape[0],), matrix=w, bias=b)


def _scale_op(name: str, node, shape) -> Op:
    s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64).ravel(), (math.prod(shape),)).copy()
    return Op(name, tuple(shape), tuple(shape), scale=s)


def _flatten_op(name: str, node, shape) -> Op:
    start = int(np.asarray(node.start_dim).ravel()[0]) % max(1, len(shape))
    end = int(np.asarray(node.end_dim).ravel()[0]) % max(1, len(shape))
    return Op(name, tuple(shape), tuple(shape[:start]) + (math.prod(shape[start:end + 1]),) + tuple(shape[end + 1:]))


def _delay_op(name: str, node, shape) -> Op:
    d = np.broadcast_to(np.asarray(node.delay, dtype=np.float64).ravel(), (math.prod(shape),)).copy()
    return Op(name, tuple(shape), tuple(shape), delay=d)


OPS: dict[type, Callable] = {nir.Affine: _dense_op, nir.Linear: _dense_op, nir.Conv1d: _conv_op,
                             nir.Conv2d: _conv_op, nir.SumPool2d: _pool_op, nir.AvgPool2d: _pool_op,
                             nir.Scale: _scale_op, nir.Flatten: _flatten_op, nir.Delay: _delay_op}
LINEAR = tuple(OPS)


def linear_op(name: str, node, shape: tuple[int, ...]) -> Op:
    return OPS[type(node)](name, node, tuple(int(s) for s in shape))


# --- one operator as a function and as a matrix ----------------------------------------------------------------

def apply_op(op: Op, x: np.ndarray) -> np.ndarray:
    """The op's linear part applied to vectors x (B, in) (no bias, no delay)."""
    if op.conv is not None:
        return conv2d(x.reshape(len(x), *op.conv.in_shape), op.conv.weight, op.conv.stride, op.conv.padding,
                      op.conv.dilation, op.conv.groups).reshape(len(x), -1)
    if op.matrix is not None:
        return x @ op.matrix.T
    if op.scale is not None:
        return x * op.scale
    return x


def conv_matrix(conv: Conv) -> np.ndarray:
    """The dense (out, in) matrix of a convolution: its response to each unit input."""
    n_in, n_out = conv.in_size, conv.out_size
    if n_in * n_out > UNROLL_MAX:
        raise GraphError(f"a convolution {conv.in_shape} -> {conv.out_shape} would unroll into {n_in * n_out:,} "
                         f"matrix entries (limit {UNROLL_MAX:,})")
    return conv2d(np.eye(n_in).reshape(n_in, *conv.in_shape), conv.weight, conv.stride, conv.padding,
                  conv.dilation, conv.groups).reshape(n_in, n_out).T


def op_matrix(op: Op) -> np.ndarray | None:
    """The op's linear part as a matrix (None: identity)."""
    if op.conv is not None:
        return conv_matrix(op.conv)
    if op.matrix is not None:
        return op.matrix
    if op.scale is not None:
        return np.diag(op.scale)
    return None


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
