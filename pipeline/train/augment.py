"""Data augmentation of training batches: random shifts of camera frames in x and y, or of a 1-D sensor's
channels."""
from __future__ import annotations

import torch


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each sample's frames (B, T, C, H, W) by up to ``max_shift`` pixels in x and y, zero-filled. Frames of
    a 1-D sensor (B, T, C: cochlea channels on the ERB scale) shift by up to ``max_shift`` channels: another
    speaker's formants lie at other frequencies, and on the ERB scale a change of the vocal tract's length is
    close to a shift (one channel of the default cochlea is about half an ERB)."""
    if max_shift == 0:
        return x
    if x.dim() == 3:
        out = torch.zeros_like(x)
        C = x.shape[2]
        for b, d in enumerate(torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=gen).tolist()):
            out[b, :, max(d, 0):C + min(d, 0)] = x[b, :, max(-d, 0):C - max(d, 0)]
        return out
    if x.dim() != 5:
        return x
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    out = torch.zeros_like(x)
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, B), generator=gen).tolist()
    for b in range(B):
        ys, yd = (slice(0, H - dy[b]), slice(dy[b], H)) if dy[b] >= 0 else (slice(-dy[b], H), slice(0, H + dy[b]))
        xs, xd = (slice(0, W - dx[b]), slice(dx[b], W)) if dx[b] >= 0 else (slice(-dx[b], W), slice(0, W + dx[b]))
        out[b, ..., yd, xd] = x[b, ..., ys, xs]
    return out
