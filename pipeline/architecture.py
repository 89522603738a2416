"""The model a run's configuration asks for: ``model.*`` read into :class:`models.architectures.Architecture`,
checked against what the input and this machine allow (one-line errors naming the key), then built there."""
from __future__ import annotations

from dataclasses import replace

from hardware.chip.loihi2 import Limits
from models.architectures import Architecture, build
from models.neuron import CubaParams
from models.rsnn import RSNN
from models.snn import SNN
from pipeline.config import ConfigError, RunConfig
from pipeline.config_rules import conv_layers


def _memory_bytes() -> int:
    """Physical memory of this machine (what a model's training state must fit in)."""
    import os
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def _fits_memory(weights: int) -> None:
    need, have = 16 * weights, _memory_bytes()        # float32 weights, gradients and Adam's two moments
    if need > have // 2:
        raise ConfigError(f"config model.hidden/channels: the model has {weights:,} weights, whose training state "
                          f"needs {need / 2**30:.1f} GiB of this machine's {have / 2**30:.1f} GiB; choose a smaller "
                          "model.hidden or model.channels")


def architecture(cfg: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> Architecture:
    """``cfg.model`` for inputs of ``input_shape`` and ``n_classes`` readout neurons; the neurons' state width is
    the chip's (``hardware/chip/loihi2.py``)."""
    m, shape = cfg.model, tuple(input_shape)
    if m.arch == "auto":                      # unresolved (pipeline/data/registry.py resolve() decides by sensor)
        m = replace(m, arch="conv" if len(shape) == 3 else "recurrent")
    if m.arch == "conv" and m.delays:
        raise ConfigError(f"config model.delays = {m.delays} needs model.arch=dense or recurrent: delays are trained "
                          f"on a 1-D sensor's channels, and data.name = {cfg.data.name!r} gives camera frames")
    if m.arch == "conv" and len(shape) != 3:
        raise ConfigError(f"config model.arch = 'conv' needs a camera's (2, H, W) frames; data.name = "
                          f"{cfg.data.name!r} gives {shape}: use model.arch=recurrent or dense")
    bits = Limits().state_bits
    a = Architecture(m.arch, shape, n_classes, tuple(conv_layers(m)) if m.arch == "conv" else (), m.hidden,
                     m.recurrent_layers, CubaParams(m.du, m.dv, m.vth_hidden, state_bits=bits),
                     CubaParams(m.du, m.dv, m.vth_out, state_bits=bits), m.weight_exp, cfg.train.seed,
                     cfg.train.surrogate_slope, m.delays, m.delay_kind)
    for i, conv in enumerate(a.conv_shapes()):
        if min(conv.out_shape[1:]) < 1:
            raise ConfigError(f"config model.kernels/strides: conv layer {i + 1} leaves no output "
                              f"({conv.out_shape}) for input {shape}")
    return a


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> SNN | RSNN:
    """The untrained model of ``cfg.model`` (refused in one line when its training state cannot fit here)."""
    a = architecture(cfg, input_shape, n_classes)
    _fits_memory(a.weights())
    return build(a)
