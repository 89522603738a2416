"""The model factory: the three architectures a run trains, built from a plain description.

``dense``: flattened input -> [hidden] -> classes; ``conv``: conv layers (square kernels, padding kernel // 2,
strided instead of pooled) -> [hidden] -> classes; ``recurrent``: flattened input -> ``recurrent_layers``
recurrent CUBA LIF layers of ``hidden`` neurons -> classes (``models/rsnn.py``). What a user asks for is read
from the run configuration by ``pipeline/architecture.py``; this module knows nothing of configurations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.neuron import CubaParams
from models.rsnn import RSNN
from models.snn import SNN, ConvShape

ARCHS = ("conv", "dense", "recurrent")


@dataclass(frozen=True)
class Architecture:
    kind: str                                   # conv | dense | recurrent
    input_shape: tuple[int, ...]                # (2, H, W) camera frames, or (C,) channels of a 1-D sensor
    n_classes: int
    convs: tuple[tuple[int, int, int], ...] = ()    # conv: (out channels, kernel, stride) per layer
    hidden: int = 0                             # neurons of the hidden dense layer (0 = none), or of each
                                                # recurrent layer
    recurrent_layers: int = 1
    hidden_neuron: CubaParams | None = None     # every layer but the readout
    out_neuron: CubaParams | None = None        # the readout
    weight_exp: int = 0
    seed: int = 0                               # the initial weights' generator
    slope: float = 5.0                          # surrogate slope
    delays: int = 0                             # trained synaptic delays of 0..delays steps (0 = none), dense and
    delay_kind: str = "synapse"                 # recurrent only: per synapse, or per presynaptic neuron

    def conv_shapes(self) -> tuple[ConvShape, ...]:
        """Each conv layer's geometry (a layer may leave no output: the caller checks ``out_shape``)."""
        shapes, shape = [], tuple(self.input_shape)
        for channels, kernel, stride in self.convs if self.kind == "conv" else ():
            shapes.append(ConvShape(shape, channels, kernel, stride, kernel // 2))
            shape = shapes[-1].out_shape
        return tuple(shapes)

    def sizes(self) -> tuple[int, ...]:
        """Neurons of the flattened input and of each dense (or recurrent) layer."""
        convs = self.conv_shapes()
        flat = int(np.prod(convs[-1].out_shape if convs else self.input_shape))
        if self.kind == "recurrent":
            return (flat,) + (self.hidden,) * self.recurrent_layers + (self.n_classes,)
        return (flat,) + ((self.hidden,) if self.hidden else ()) + (self.n_classes,)

    def weights(self) -> int:
        """Trainable weights (what the training state's memory grows with)."""
        sizes = self.sizes()
        dense = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        if self.kind == "recurrent":
            return dense + self.hidden ** 2 * self.recurrent_layers
        return dense + sum(c.out_channels * c.in_shape[0] * c.kernel ** 2 for c in self.conv_shapes())


def build(a: Architecture) -> SNN | RSNN:
    """The untrained model ``a`` describes, its weights drawn from ``a.seed``."""
    if a.kind not in ARCHS:
        raise ValueError(f"unknown architecture {a.kind!r}; one of {ARCHS}")
    sizes, gen = a.sizes(), torch.Generator().manual_seed(a.seed)
    if a.kind == "recurrent":
        neurons = (a.hidden_neuron,) * a.recurrent_layers + (a.out_neuron,)
        model = RSNN(a.input_shape, sizes, neurons, a.weight_exp, gen, slope=a.slope)
    else:
        convs = a.conv_shapes()
        depth = len(convs) + len(sizes) - 1
        neurons = (a.hidden_neuron,) * (depth - 1) + (a.out_neuron,)
        init = (16.0, 24.0) if a.kind == "dense" and a.hidden else None      # the dense model's tuned start
        model = SNN(tuple(a.input_shape), convs, sizes, neurons, a.weight_exp, gen, slope=a.slope, init_std=init)
    if a.delays:         # drawn after the weights: the same seed gives the same weights with or without delays
        model.add_delays(a.delays, a.delay_kind, gen)
    return model
