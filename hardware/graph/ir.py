"""The one network representation that every backend, ``check`` and the resource estimate work from.

A :class:`Network` is populations of Loihi 2 CUBA LIF neurons (Lava's ``LIF``) connected by projections that
keep their kind: :class:`Dense` (a weight matrix) or :class:`Conv` (a shared kernel, as Loihi 2 stores it;
sum pooling is a grouped convolution with a kernel of ones). Everything is integer, in the contract of
``models/neuron.py``; per step and population::

    a = sum over projections p into it of  shift(W_p (*) s_p[t - delay_p], exp_p)      (*: matmul or conv)
    u = trunc(u * (4095 - du) / 4096) + (a << 6)              24-bit, wraps once
    v = trunc(v * (4096 - dv) / 4096) + u + bias              24-bit, saturates
    spike when v > vth << 6, then v = 0

A delay of 1 is Lava's one-step synaptic delay. Shapes are NIR's: (C, H, W) or (N,), flattened C-major (the
order of PyTorch's ``flatten``); Lava's (W, H, C) order is the Lava backend's business alone.

Graphs carrying our integer contract are read exactly (``hardware/graph/read.py``); graphs from other frameworks are
discretised and quantised there, and then also carry :class:`FloatModel`, the discretised graph before
quantisation, so that what quantisation changes can be measured.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError

STATE_MAX = 1 << (Limits().state_bits - 1)   # u and v are signed of the chip's state width
CONTRACT = "loihi2-cuba-lif-fixed_pt/v1"      # the graph metadata key export/nir_export.py writes for these equations


@dataclass(frozen=True)
class Neurons:
    """One population: one du, dv and vth (Lava's LIF has one per process), per-neuron bias and initial v."""
    name: str
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray           # (N,) int64
    bias_exp: np.ndarray            # (N,) int64
    v0: np.ndarray                  # (N,) int64 initial voltage
    spiking: bool = True            # False: a readout whose voltage is the output (its vth is never reached)
    kind: str = "CubaLIF"           # the NIR node type it was read from

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def bias(self) -> np.ndarray:
        return self.bias_mant << self.bias_exp


@dataclass(frozen=True)
class Dense:
    """``a = shift(W s, exp)``; ``weight`` (out, in) int64 mantissas."""
    weight: np.ndarray
    exp: int

    kind = "dense"

    @property
    def in_size(self) -> int:
        return self.weight.shape[1]

    @property
    def out_size(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True)
class Conv:
    """``a = shift(conv2d(s, W), exp)``, PyTorch's cross-correlation; ``weight`` (C_out, C_in / groups, kh, kw)
    int64 mantissas, ``in_shape`` (C, H, W), symmetric zero padding. ``pool`` names a sum pooling written as a
    grouped convolution with a kernel of ones (for reports)."""
    weight: np.ndarray
    exp: int
    in_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    pool: str = ""

    kind = "conv"

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        ho = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return self.weight.shape[0], ho, wo

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)


@dataclass(frozen=True)
class Projection:
    """Spikes of ``source`` ("input", "bias": always on, or a population) into population ``target``.

    ``delay``: steps >= 1; an int, or for a dense projection per synapse (out, in)."""
    source: str
    target: str
    synapse: Dense | Conv
    delay: int | np.ndarray = 1
    path: tuple[str, ...] = ()      # the NIR nodes it was read from

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    @property
    def max_delay(self) -> int:
        return int(np.max(self.delay))


@dataclass(frozen=True)
class FloatPopulation:
    """A population of the discretised float graph, in units of the integer v (scaled by ``scale``)."""
    alpha: float                    # current keep
    beta: float                     # voltage keep
    theta: np.ndarray               # threshold per neuron (inf when not spiking)
    bias: np.ndarray
    v0: np.ndarray
    scale: np.ndarray               # lambda per neuron: integer v = lambda * float v


@dataclass(frozen=True)
class FloatModel:
    """The graph as written (discretised, before quantisation): float weights per projection, in the order of
    ``Network.projections``, in units of the synaptic input ``a`` (``u += a << 6``), same layout as the integers."""
    populations: dict[str, FloatPopulation]
    weights: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Network:
    input_shape: tuple[int, ...]
    populations: dict[str, Neurons]             # in order of distance from the input
    projections: tuple[Projection, ...]
    readout: tuple[str, ...]                    # populations that feed the graph's Output
    dt: float
    n_bins: int | None = None                   # our graphs: input bins and steps per sample
    n_steps: int | None = None
    exact: bool = True                          # read from our integer metadata (else discretised + quantised)
    method: str = "exp"
    source: str = "nir"
    float_model: FloatModel | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def max_delay(self) -> int:
        return max((p.max_delay for p in self.projections), default=1)

    def incoming(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.target == name]

    @property
    def depth(self) -> dict[str, int]:
        """Steps from the input to each population along its shortest path (1 for the first layer)."""
        d, frontier, step = {}, {"input"}, 0
        while frontier:
            step += 1
            nxt = {p.target for p in self.projections if p.source in frontier and p.target not in d}
            d.update({k: step for k in nxt})
            frontier = nxt
        return d

    @property
    def reach(self) -> int:
        """Steps an input bin takes to the furthest population along the feed-forward projections (each its
        longest delay; recurrent ones, which return to a layer no deeper, left out): the empty steps a sample
        needs after its last bin for that bin to arrive everywhere."""
        depth, arrive = self.depth, {"input": 0}
        for k in sorted(depth, key=depth.get):
            arrive[k] = max((arrive[p.source] + p.max_delay for p in self.incoming(k)
                             if p.source in arrive and depth.get(p.source, 0) < depth[k]), default=depth[k])
        return max(arrive.values())


def input_spikes(net: Network, frames: np.ndarray) -> np.ndarray:
    """Frames (B, T, ...) of a graph of ours -> binary input spikes (B, n_steps, inputs), zero after the T bins."""
    B, T = frames.shape[:2]
    if T != net.n_bins:
        raise GraphError(f"input has {T} time bins; the graph was built for {net.n_bins}")
    x = np.zeros((B, net.n_steps, net.input_size), dtype=np.int64)
    x[:, :T] = frames.reshape(B, T, -1) > 0
    return x
