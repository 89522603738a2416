"""The ONNX export: the integer step model in onnxruntime reproduces the reference spike for spike, dense and
convolutional (``ConvInteger``)."""
import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import random_net
from test_backends import conv_model

from export import nir_export, onnx_export
from hardware.backends import onnx as onnx_backend
from hardware.backends import reference
from hardware.graph import read
from hardware.graph.ir import input_spikes


@pytest.fixture
def chain(tmp_path):
    nir_export.write(nir_export.to_nir(random_net(np.random.default_rng(3)), 1e-3, 8), tmp_path / "m.nir")
    return read.load(tmp_path / "m.nir")


def frames(seed=4, B=60, shape=(2, 6, 6)):
    return (np.random.default_rng(seed).random((B, 8, *shape)) < 0.4).astype(np.uint8)


def spikes(net, trace):
    return [trace.spikes[k] for k in net.populations]


def test_integer_onnx_is_spike_identical_to_the_reference(chain, tmp_path):
    model = onnx_export.to_onnx(chain)
    onnx_export.write(model, tmp_path / "m.onnx")
    loaded = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.ir_version <= onnx.IR_VERSION and {i.name for i in loaded.graph.input} >= {"in0", "u0", "v0"}
    x = input_spikes(chain, frames())
    ref = spikes(chain, reference.simulate(chain, x))
    out = spikes(chain, onnx_backend.simulate(chain, x, tmp_path / "m.onnx"))
    assert all(r.sum() > 0 for r in ref)                     # every layer is active: the check has teeth
    assert all(np.array_equal(r, o) for r, o in zip(ref, out))
    # the random net has negative weights (so negative u and v: truncation toward zero matters), a negative
    # weight exponent (floor division) and the decay edge cases du = 4095, dv = 0 and dv = 4095
    assert onnxruntime.InferenceSession(loaded.SerializeToString()).get_inputs()[0].name == "in0"


def test_integer_onnx_convolutions_are_exact():
    """ConvInteger on uint8 spikes and int8 kernels (int32 accumulation in onnxruntime), strided and padded."""
    net = read.load(nir_export.to_nir(conv_model(2), 1e-3, 8))
    model = onnx_export.to_onnx(net)
    assert "ConvInteger" in {n.op_type for n in model.graph.node}
    x = input_spikes(net, frames(seed=6, B=40, shape=(2, 12, 12)))
    ref = spikes(net, reference.simulate(net, x))
    out = spikes(net, onnx_backend.simulate(net, x, model))
    assert all(r.sum() > 0 for r in ref)
    assert all(np.array_equal(r, o) for r, o in zip(ref, out))


def test_a_wrong_decay_in_the_onnx_model_is_caught(chain):
    wrong = onnx_export.to_onnx(chain, integer=False)        # float decays: no truncation toward zero
    x = input_spikes(chain, frames(seed=5, B=200))
    ref = spikes(chain, reference.simulate(chain, x))
    out = spikes(chain, onnx_backend.simulate(chain, x, wrong))
    assert any(not np.array_equal(r, o) for r, o in zip(ref, out))
