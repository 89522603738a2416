"""A 2-D convolution in numpy, as PyTorch computes it (cross-correlation): the integer reference runs every
convolution with it, and the NIR reader uses it to compose and unroll linear paths (``hardware/graph/linear_ops.py``)."""
from __future__ import annotations

import numpy as np


def conv2d(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """PyTorch's ``conv2d`` (cross-correlation) on numpy: x (B, C, H, W), w (C_out, C / groups, kh, kw)."""
    B, C, H, W = x.shape
    co, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = np.empty((B, C, kh, kw, ho, wo), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
    per = co // groups
    out = np.empty((B, co, ho * wo), dtype=np.float64)
    for g in range(groups):
        patch = cols[:, g * cg:(g + 1) * cg].reshape(B, cg * kh * kw, ho * wo)
        out[:, g * per:(g + 1) * per] = w[g * per:(g + 1) * per].reshape(per, -1).astype(np.float64) @ patch
    return out.reshape(B, co, ho, wo)
