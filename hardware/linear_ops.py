"""NIR's linear nodes (Affine, Linear, Conv1d/2d, SumPool2d, AvgPool2d, Scale, Flatten, Delay) as dense matrices
on flattened vectors, for composing the path between two neuron nodes into one synapse matrix (``foreign.py``).

Written on numpy: ``hardware/`` does not import torch. ``tests/test_verify.py`` checks the convolutions and
pooling against PyTorch's.
"""
from __future__ import annotations

import nir
import numpy as np

from hardware.graph import GraphError

LINEAR = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.Flatten, nir.SumPool2d, nir.AvgPool2d, nir.Scale,
          nir.Delay)


def _conv_matrix(shape: tuple[int, int, int], w: np.ndarray, stride, pad, dilation, groups: int):
    """Dense matrix of a 2-D cross-correlation (PyTorch's Conv2d) on a flattened (C, H, W) input.

    ``pad`` is ((top, bottom), (left, right)). Written on numpy (hardware/ does not import torch)."""
    C, H, W = shape
    co, cig, kh, kw = w.shape
    if C != cig * groups or co % groups:
        raise GraphError(f"weight {w.shape} with groups {groups} does not take {C} channels")
    (pt, pb), (pl, pr) = pad
    Ho = (H + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (W + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if Ho < 1 or Wo < 1:
        raise GraphError(f"a {kh} x {kw} kernel (dilation {dilation}, padding {pad}) does not fit the {H} x {W} "
                         "input")
    m = np.zeros((co, Ho, Wo, C, H, W))
    oy, ox = np.arange(Ho), np.arange(Wo)
    per = co // groups
    for o in range(co):
        g = o // per
        for c in range(cig):
            for ky in range(kh):
                iy = oy * stride[0] - pt + ky * dilation[0]
                vy = (iy >= 0) & (iy < H)
                for kx in range(kw):
                    ix = ox * stride[1] - pl + kx * dilation[1]
                    vx = (ix >= 0) & (ix < W)
                    yy, xx = np.meshgrid(np.flatnonzero(vy), np.flatnonzero(vx), indexing="ij")
                    m[o, yy, xx, g * cig + c, iy[vy][:, None], ix[vx][None, :]] += w[o, c, ky, kx]
    return m.reshape(co * Ho * Wo, C * H * W), (co, Ho, Wo)


def _padding(pad, k, dilation, n: int):
    """((before, after), ...) per spatial dim from an int/tuple or PyTorch's 'valid'/'same' (stride 1)."""
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            return tuple((0, 0) for _ in range(n))
        if pad == "same":
            return tuple((d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2) for kk, d in zip(k, dilation))
        raise GraphError(f"padding {pad!r} is not understood")
    return tuple((p, p) for p in _pair(pad, n))


def _pair(v, k: int = 2):
    v = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return tuple(v * k if len(v) == 1 else v)


def linear_op(name: str, node, shape: tuple[int, ...]):
    """(matrix or None for identity, bias or None, output shape, per-element delay or None) of a linear node."""
    n = int(np.prod(shape))
    kind = type(node).__name__
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != n:
            raise GraphError(f"node {name!r} ({kind}): weight {w.shape} does not take {n} inputs")
        b = (np.broadcast_to(np.asarray(node.bias, dtype=np.float64).ravel(), (w.shape[0],)).copy()
             if isinstance(node, nir.Affine) else None)
        return w, b, (w.shape[0],), None
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        two = isinstance(node, nir.Conv2d)
        k = 2 if two else 1
        if len(shape) != k + 1:
            raise GraphError(f"node {name!r} ({kind}): input shape {shape} is not (C, {'H, W' if two else 'L'})")
        w = np.asarray(node.weight, dtype=np.float64)
        stride, dil = _pair(node.stride, k), _pair(node.dilation, k)
        pad = _padding(node.padding, w.shape[2:], dil, k)
        if not two:                         # a 1-D convolution is a 2-D one of height 1
            w, shape, stride, dil, pad = w[:, :, None], (shape[0], 1, shape[1]), (1,) + stride, (1,) + dil, \
                ((0, 0),) + pad
        try:
            m, out = _conv_matrix(shape, w, stride, pad, dil, int(node.groups))
        except GraphError as e:
            raise GraphError(f"node {name!r} ({kind}): {e}") from None
        out = out if two else (out[0], out[2])
        bias = getattr(node, "bias", None)
        b = None
        if bias is not None and np.any(bias):
            per_channel = np.broadcast_to(np.asarray(bias, dtype=np.float64).ravel(), (out[0],))
            b = np.repeat(per_channel, int(np.prod(out[1:])))
        return m, b, out, None
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        if len(shape) != 3:
            raise GraphError(f"node {name!r} ({kind}): input shape {shape} is not (C, H, W)")
        ks, st = _pair(node.kernel_size), _pair(node.stride)
        value = 1.0 / (ks[0] * ks[1]) if isinstance(node, nir.AvgPool2d) else 1.0   # padding counts, as in PyTorch
        w = np.zeros((shape[0], 1, *ks)) + value
        try:
            m, out = _conv_matrix(shape, w, st, _padding(node.padding, ks, (1, 1), 2), (1, 1), shape[0])
        except GraphError as e:
            raise GraphError(f"node {name!r} ({kind}): {e}") from None
        return m, None, out, None
    if isinstance(node, nir.Scale):
        s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64).ravel(), (n,))
        return np.diag(s), None, shape, None
    if isinstance(node, nir.Flatten):
        start = int(node.start_dim) % max(1, len(shape))
        end = int(node.end_dim) % max(1, len(shape))
        return None, None, shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:], None
    if isinstance(node, nir.Delay):
        d = np.broadcast_to(np.asarray(node.delay, dtype=np.float64).ravel(), (n,))
        return None, None, shape, d
    raise GraphError(f"node {name!r}: type {kind} is not supported")  # pragma: no cover
