"""The convolutional golden step against values computed by hand, and the same layer through NIR and the reference."""
import numpy as np

from export.nir_export import to_nir
from hardware.backends import reference
from hardware.chip.loihi2 import Limits
from hardware.graph import read
from hardware.graph.ir import input_spikes
from models.neuron import CubaParams
from models.snn import ConvShape, DeployedNet, IntLayer, golden_spikes

STATE_BITS = Limits().state_bits   # the chip's u and v width, given to the model

# one input channel 3 x 3, one 2 x 2 kernel, stride 1, no padding, weight exponent 1;
# du = 4095 clears u every step (u = a << 6), dv = 0 keeps v, threshold 4 << 6 = 256
X = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], np.uint8)
W = np.array([[2, -1], [3, 1]], np.int8)
LAYER = IntLayer("conv1", W[None, None], 1, CubaParams(4095, 0, 4, state_bits=STATE_BITS), ConvShape((1, 3, 3), 1, 2, 1, 0))

# cross-correlation: (0,0) 2 + 1 = 3; (0,1) -1 + 3 = 2; (1,0) -1; (1,1) 2; times 2**1 -> a = 6, 4, -2, 4
# step 1 (one step after the input): u = a * 64 = 384, 256, -128, 256 = v; spike where v > 256: neuron 0 only
# step 2: no input, u = 0, v keeps 0 (reset), 256, -128, 256: no spike (256 is not above 256)
EXPECTED = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], bool)


def frames() -> np.ndarray:
    f = np.zeros((1, 2, 1, 3, 3), np.uint8)      # (B, T bins, C, H, W): the pattern in bin 0, bin 1 empty
    f[0, 0, 0] = X
    return f


def test_golden_conv_step_equals_hand_computed_values():
    net = DeployedNet((1, 3, 3), (LAYER,))
    assert net.n_steps(2) == 3
    np.testing.assert_array_equal(golden_spikes(net, frames())[0][0], EXPECTED)


def test_the_conv_layer_through_nir_and_the_reference_gives_the_same_spikes():
    net = read.load(to_nir(DeployedNet((1, 3, 3), (LAYER,)), 1e-3, 2))
    p = net.projections[0]
    assert p.synapse.kind == "conv" and p.synapse.exp == 1 and p.synapse.out_shape == (1, 2, 2)
    trace = reference.simulate(net, input_spikes(net, frames()))
    np.testing.assert_array_equal(trace.spikes["lif1"][0], EXPECTED)      # the layer's neuron node names it
    assert trace.peak["lif1"] == 384 / 256          # the highest v reached, in units of the threshold
