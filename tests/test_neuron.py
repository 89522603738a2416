"""The deployment neuron's integer step against hand-computed values."""
import numpy as np
import pytest
import torch

from hardware.chip.loihi2 import Limits
from models.neuron import CubaParams, cuba_step_int, cuba_step_train

STATE_BITS = Limits().state_bits   # the chip's u and v width, given to the model

L = torch.tensor


def step(a, u, v, p):
    s, u, v = cuba_step_int(L(a), L(u), L(v), p)
    return s.tolist(), u.tolist(), v.tolist()


def test_decay_truncates_toward_zero_and_spikes_above_threshold():
    p = CubaParams(du=1024, dv=256, vth=80, state_bits=STATE_BITS)   # u keeps 3071/4096, v keeps 3840/4096, theta = 5120
    # u: 1000*3071/4096 = 749.75 -> 749, + 3<<6 = 941;  -1000 -> -749 (toward zero), + 192 = -557
    # v: 5000*3840/4096 = 4687.5 -> 4687, + 941 = 5628 > 5120: spike, v reset to 0, u kept
    #    -5000 -> -4687, + (-557) = -5244: no spike
    assert step([3, 3], [1000, -1000], [5000, -5000], p) == ([True, False], [941, -557], [0, -5244])


def test_threshold_is_strict():
    p = CubaParams(du=4095, dv=0, vth=1, state_bits=STATE_BITS)      # u cleared every step, no voltage leak; theta = 64
    assert step([1], [0], [0], p) == ([False], [64], [64])      # v == theta: no spike
    assert step([1], [0], [1], p) == ([True], [64], [0])


def test_du_4095_clears_current_and_dv_0_does_not_leak():
    p = CubaParams(du=4095, dv=0, vth=10**5, state_bits=STATE_BITS)
    assert step([0], [12345], [777], p) == ([False], [0], [777])


def test_du_0_still_leaks_one_4096th():
    p = CubaParams(du=0, dv=4095, vth=10**5, state_bits=STATE_BITS)   # Lava adds 1 to du; dv = 4095 keeps 1/4096
    assert step([0], [4096], [8192], p) == ([False], [4095], [4095 + 2])


def test_current_wraps_once_and_voltage_saturates():
    p = CubaParams(du=4095, dv=0, vth=2**17 - 1, state_bits=STATE_BITS)
    # u = a << 6 = 2**23 + 64 wraps to 64 - 2**23; v saturates at -(2**23 - 1)
    assert step([2**17 + 1], [0], [-2**23 + 100], p) == ([False], [64 - 2**23], [-(2**23 - 1)])
    # v saturates at +(2**23 - 1), which exceeds the largest threshold (2**17 - 1) << 6 -> spike
    s, u, v = step([2**16], [0], [2**23 - 1], p)
    assert s == [True] and u == [2**22] and v == [0]


def test_bias_is_added_unshifted():
    p = CubaParams(du=4095, dv=0, vth=10**5, bias=5, state_bits=STATE_BITS)
    assert step([0], [0], [0], p) == ([False], [0], [5])


@pytest.mark.parametrize("seed", range(3))
def test_training_step_forward_equals_integer_step(seed):
    """Where float32 holds every product exactly, the training forward pass is the integer step."""
    rng = np.random.default_rng(seed)
    p = CubaParams(du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)), vth=int(rng.integers(1, 200)),
                   state_bits=STATE_BITS)
    a, u, v = (rng.integers(-200, 200, 64) for _ in range(3))
    s_i, u_i, v_i = cuba_step_int(L(a), L(u), L(v), p)
    s_f, u_f, v_f = cuba_step_train(L(a).float(), L(u).float(), L(v).float(), p, lambda x: (x > 0).float())
    assert torch.equal(s_f.bool(), s_i) and torch.equal(u_f.long(), u_i) and torch.equal(v_f.long(), v_i)
