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
from hardware.graph.ir import Conv

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
