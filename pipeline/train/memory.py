"""The bytes autograd holds for backward: how the trainers' retained graph is measured (tests, benchmarks)."""
from __future__ import annotations

import torch


class SavedTensorMeter:
    """Bytes of tensors autograd holds for backward (the retained graph), live and at peak, while active.

    Uses ``torch.autograd.graph.saved_tensors_hooks``: each saved tensor is wrapped in a handle that counts its
    bytes until the graph that holds it is freed. A tensor saved twice counts twice (an upper bound).
    """

    def __init__(self):
        self.live = self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda h: h.tensor)

    def _pack(self, tensor: torch.Tensor) -> "_Saved":
        return _Saved(self, tensor)

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


class _Saved:
    __slots__ = ("meter", "tensor", "nbytes")

    def __init__(self, meter: SavedTensorMeter, tensor: torch.Tensor):
        self.meter, self.tensor, self.nbytes = meter, tensor, tensor.numel() * tensor.element_size()
        meter.live += self.nbytes
        meter.peak = max(meter.peak, meter.live)

    def __del__(self):
        self.meter.live -= self.nbytes
