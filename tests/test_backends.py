"""Golden model vs integer reference vs real Lava fixed_pt (our processes and lava-dl's netx), spike for spike,
dense and convolutional."""
import os

import numpy as np
import pytest
import torch
from conftest import random_net, verified

from export.nir_export import to_nir
from hardware.backends import lava, pool, reference
from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError, LavaError
from hardware.graph import read
from hardware.graph.conv import conv2d
from hardware.graph.ir import Conv, Dense, Network, Neurons, Projection, input_spikes
from hardware.judge import equivalence, results
from models.neuron import CubaParams
from models.snn import SNN, ConvShape, golden_spikes

STATE_BITS = Limits().state_bits   # the chip's u and v width, given to the model


def _case(seed, n=12, T=10, density=0.3):
    rng = np.random.default_rng(seed)
    net = random_net(rng)
    frames = (rng.random((n, T, 2, 6, 6)) < density).astype(np.uint8)
    return net, read.load(to_nir(net, 0.001, T)), frames


def conv_model(seed: int = 0):
    """A random conv SNN: a strided and a padded convolution, then two dense layers; every layer active."""
    gen = torch.Generator().manual_seed(seed)
    convs = (ConvShape((2, 12, 12), 4, 3, 2, 1), ConvShape((4, 6, 6), 6, 3, 1, 1))
    neurons = [CubaParams(du, dv, vth, state_bits=STATE_BITS)
               for du, dv, vth in ((1024, 256, 40), (4095, 0, 60), (0, 4095, 30), (1024, 256, 20))]
    model = SNN((2, 12, 12), convs, (216, 20, 5), tuple(neurons),
                0, gen, init_std=(80.0, 60.0, 60.0, 60.0))
    return model.deployed()


def _conv_case(seed, n=20, T=10, density=0.3):
    deployed = conv_model(seed)
    frames = (np.random.default_rng(seed).random((n, T, 2, 12, 12)) < density).astype(np.uint8)
    return deployed, read.load(to_nir(deployed, 0.001, T)), frames


@pytest.mark.parametrize("case", [("dense", s) for s in range(3)] + [("conv", s) for s in range(2)])
def test_reference_equals_golden(case):
    kind, seed = case
    model, net, frames = (_case(seed, n=40) if kind == "dense" else _conv_case(seed, n=30))
    gold = golden_spikes(model, torch.from_numpy(frames))
    ref = reference.simulate(net, input_spikes(net, frames))
    assert all(g.sum() > 0 for g in gold)        # every layer is active, not trivially silent
    assert all(np.array_equal(g, ref.spikes[k]) for g, k in zip(gold, net.populations))


def test_reference_convolution_equals_pytorch_on_integers():
    import torch.nn.functional as F
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, (3, 4, 9, 7)).astype(np.int64)
    w = rng.integers(-128, 128, (6, 2, 3, 2))
    got = conv2d(x, w, (2, 1), (1, 0), (1, 2), 2)
    want = F.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), stride=(2, 1),
                    padding=(1, 0), dilation=(1, 2), groups=2).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_lava_equals_reference_spike_for_spike():
    """Random 3-layer dense network, 3 chunks of samples on 2 workers: exercises the staggered resets."""
    _, net, frames = _case(7, n=30)
    v = verified(net, input_spikes(net, frames), chunk=10)
    lv = v.backend("lava")
    assert lv.identical == lv.compared == 30, lv.first_divergence
    assert all(layer.expected_spikes > 0 for layer in lv.layers)
    # every step Lava computes is compared, the tails past each sample's end included (27 of 30 samples have one)
    assert [L.tail_positions for L in lv.layers] == [0, 27 * 30 * 1, 27 * 5 * 2]     # 40, 30, 5 neurons


def pooled_network(rng) -> Network:
    """input (2, 8, 8) -> strided conv -> LIF (3, 4, 4) -> 2x2 sum pooling (a grouped conv of ones) -> LIF
    (3, 2, 2) -> dense -> LIF (4): Lava's Conv with stride, padding and groups."""
    def pop(name, shape, vth):
        n = int(np.prod(shape))
        return Neurons(name, shape, 1024, 256, vth, np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
    conv = Conv(rng.integers(-40, 90, (3, 2, 3, 3)), 1, (2, 8, 8), (2, 2), (1, 1))
    pool_ = Conv(np.ones((3, 1, 2, 2), np.int64), 3, (3, 4, 4), (2, 2), (0, 0), groups=3, pool="sum")
    fc = Dense(rng.integers(-60, 120, (4, 12)), 2)
    pops = {"c": pop("c", (3, 4, 4), 40), "p": pop("p", (3, 2, 2), 30), "f": pop("f", (4,), 20)}
    proj = (Projection("input", "c", conv), Projection("c", "p", pool_), Projection("p", "f", fc))
    return Network((2, 8, 8), pops, proj, ("f",), 1e-3, 10, 13)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lava_conv_with_stride_padding_and_pooling_equals_reference():
    rng = np.random.default_rng(3)
    net = pooled_network(rng)
    frames = (rng.random((16, 10, 2, 8, 8)) < 0.3).astype(np.uint8)
    v = verified(net, input_spikes(net, frames), chunk=8)
    assert all(L.spikes > 0 for L in v.layers), v.layers
    lv = v.backend("lava")
    assert lv.identical == lv.compared == 16 and lv.tail_positions > 0, lv.first_divergence


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lava_runs_our_conv_model_identically_batched_and_one_network_per_sample():
    _, net, frames = _conv_case(11, n=12)
    x = input_spikes(net, frames)
    batched = verified(net, x, chunk=6).backend("lava")
    busy = x.copy()
    busy[:, -1] = 1                                       # a busy last step forces one network per sample
    assert lava.batch_blocker(net, busy) and lava.batch_blocker(net, x) is None
    single = verified(net, busy[:4]).backend("lava")
    assert batched.identical == batched.compared == 12 and batched.tail_positions > 0, batched.first_divergence
    assert single.identical == single.compared == 4 and single.tail_positions == 0, single.first_divergence


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_parallel_verification_gives_the_same_spikes_as_serial():
    _, net, frames = _case(8, n=16)
    x = input_spikes(net, frames)
    serial = lava.simulate(net, x, workers=1, chunk=16, progress=False)
    parallel = lava.simulate(net, x, workers=2, chunk=8, progress=False)    # 2 chunks of 8
    for k in net.populations:       # the same wherever both computed; a network's last sample has no tail
        both = serial.mask(k) & parallel.mask(k)
        assert np.array_equal(serial.spikes[k] & both[:, :, None], parallel.spikes[k] & both[:, :, None])
    last = list(net.populations)[-1]
    assert serial.mask(last)[7, -1] and not parallel.mask(last)[7, -1]
    assert sum(s.sum() for s in serial.spikes.values()) > 0


def test_compare_finds_the_first_divergence():
    from hardware.judge.trace import Trace
    g = Trace({"a": np.zeros((3, 5, 4), bool), "b": np.zeros((3, 5, 2), bool)})
    o = Trace({k: v.copy() for k, v in g.spikes.items()})
    o.spikes["b"][1, 2, 1] = True
    o.spikes["a"][1, 3, 0] = True
    o.spikes["a"][2, 0, 3] = True
    r = equivalence.compare(["a", "b"], results.Expected(g, "golden", "g"), o, 5, "x", "x")
    assert r.identical == 1 and r.compared == 3 and r.diverged == (1, 2)
    assert r.first_divergence.to_json() == {"sample": 1, "step": 2, "layer": "b", "neuron": 1,
                                            "observable": "spikes", "past_sample_end": False}
    assert r.layers[0].mismatched == 2


def test_lava_backend_refuses_a_convolution_with_a_negative_exponent():
    net = pooled_network(np.random.default_rng(0))
    bad = Projection("input", "c", Conv(net.projections[0].synapse.weight, -1, (2, 8, 8), (2, 2), (1, 1)))
    with pytest.raises(GraphError, match="projection input->c: a convolution with weight exponent -1 < 0"):
        lava.check_supported(Network(net.input_shape, net.populations, (bad,) + net.projections[1:], net.readout,
                                     net.dt, net.n_bins, net.n_steps))


def _live_pids() -> set[int]:
    """Live processes that this test process could have created: forks of it (same command line) and
    multiprocessing workers. Unrelated processes started meanwhile on the machine are not counted."""
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as f:
        ours = f.read()
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
                if cmd == ours or b"multiprocessing" in cmd:
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def _hang_in_lava(net, x):
    """Start a Lava network that runs without end, then wait forever: work that outlasts any timeout by
    construction, whatever the machine's speed."""
    import tempfile
    import threading

    from lava.magma.core.run_conditions import RunContinuous
    from lava.magma.core.run_configs import Loihi2SimCfg
    source, *_ = lava._build(net, x, tempfile.mkdtemp(prefix="lava-hang-"), None, monitor=False)
    source.run(condition=RunContinuous(), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))    # returns at once
    threading.Event().wait()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_lava_timeout_raises_and_leaves_no_lava_processes():
    _, net, frames = _case(0, n=1)
    x = input_spikes(net, frames)[0]
    before = _live_pids()
    with pytest.raises(LavaError, match="timed out after 5 s on the hanging network"):
        pool.run_all(_hang_in_lava, [(net, x)], 1, 5, "hang", [1], ["the hanging network"], progress=False)
    import time
    for _ in range(50):                 # killed at once; give the kernel a moment to reap them
        if not _live_pids() - before:
            break
        time.sleep(0.2)
    assert not _live_pids() - before


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_netx_file_loaded_by_lava_dl_equals_reference_spike_for_spike(kind, tmp_path):
    """The netx HDF5 file, built into a network by lava-dl's own hdf5.Network and run in Lava fixed_pt. With a
    random (asymmetric) kernel, a transposed or unflipped kernel (lava-dl issue 260) would diverge here."""
    from export import netx_export
    if kind == "dense":
        rng = np.random.default_rng(11)
        net = read.load(to_nir(random_net(rng, exps=(1, 0, 0)), 0.001, 10))   # netx stores q << e: e >= 0
        frames = (rng.random((20, 10, 2, 6, 6)) < 0.3).astype(np.uint8)
    else:
        _, net, frames = _conv_case(4, n=20)
    netx_export.write(net, tmp_path / "model.net")
    v = verified(net, input_spikes(net, frames), backends=("netx",), chunk=10, folder=tmp_path)
    nx = v.backend("netx")
    assert nx.identical == nx.compared == 20 and nx.tail_positions > 0, nx.first_divergence
    assert all(layer.expected_spikes > 0 for layer in nx.layers)


def test_netx_export_refuses_what_netx_cannot_store(tmp_path):
    from export import netx_export
    _, net, _ = _case(0)                      # random_net's last layer has weight_exp -2
    with pytest.raises(GraphError, match="layer lif3: weight_exp -2 < 0"):
        netx_export.write(net, tmp_path / "model.net")
    assert not (tmp_path / "model.net").exists()


def _where_am_i(_):
    import time
    time.sleep(0.3)
    return os.getpid(), tuple(sorted(os.sched_getaffinity(0)))


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_parallel_lava_workers_are_pinned_to_different_cpus():
    import multiprocessing
    with pool.pool(2, multiprocessing.get_context("spawn")) as p:
        seen = dict(p.map(_where_am_i, range(6)))
    assert len(seen) == 2
    assert all(len(cpus) == 1 for cpus in seen.values())
    assert len(set(seen.values())) == 2
