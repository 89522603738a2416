"""Golden model vs integer reference vs real Lava fixed_pt (our processes and lava-dl's netx), spike for spike,
dense and convolutional."""
import os

import numpy as np
import pytest
import torch
from conftest import random_net

from export.nir_export import to_nir
from hardware import equivalence, read
from hardware.backends import lava, pool, reference
from hardware.errors import GraphError, LavaError
from hardware.ir import Conv, Dense, Network, Neurons, Projection, input_spikes
from models.neuron import CubaParams
from models.snn import SNN, ConvShape, golden_spikes


def _case(seed, n=12, T=10, density=0.3):
    rng = np.random.default_rng(seed)
    net = random_net(rng)
    frames = (rng.random((n, T, 2, 6, 6)) < density).astype(np.uint8)
    return net, read.load(to_nir(net, 0.001, T)), frames


def conv_model(seed: int = 0):
    """A random conv SNN: a strided and a padded convolution, then two dense layers; every layer active."""
    gen = torch.Generator().manual_seed(seed)
    convs = (ConvShape((2, 12, 12), 4, 3, 2, 1), ConvShape((4, 6, 6), 6, 3, 1, 1))
    model = SNN((2, 12, 12), convs, (216, 20, 5), (CubaParams(1024, 256, 40), CubaParams(4095, 0, 60),
                                                    CubaParams(0, 4095, 30), CubaParams(1024, 256, 20)),
                0, gen, init_std=(80.0, 60.0, 60.0, 60.0))
    return model.deployed()


def _conv_case(seed, n=20, T=10, density=0.3):
    deployed = conv_model(seed)
    frames = (np.random.default_rng(seed).random((n, T, 2, 12, 12)) < density).astype(np.uint8)
    return deployed, read.load(to_nir(deployed, 0.001, T)), frames


def _listed(net: Network, trace) -> list[np.ndarray]:
    return [trace.spikes[k] for k in net.populations]


@pytest.mark.parametrize("case", [("dense", s) for s in range(3)] + [("conv", s) for s in range(2)])
def test_reference_equals_golden(case):
    kind, seed = case
    model, net, frames = (_case(seed, n=40) if kind == "dense" else _conv_case(seed, n=30))
    gold = golden_spikes(model, torch.from_numpy(frames))
    ref = reference.simulate(net, input_spikes(net, frames))
    assert all(g.sum() > 0 for g in gold)        # every layer is active, not trivially silent
    assert all(np.array_equal(g, r) for g, r in zip(gold, _listed(net, ref)))


def test_reference_convolution_equals_pytorch_on_integers():
    import torch.nn.functional as F
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, (3, 4, 9, 7)).astype(np.int64)
    w = rng.integers(-128, 128, (6, 2, 3, 2))
    got = reference.conv2d(x, w, (2, 1), (1, 0), (1, 2), 2)
    want = F.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), stride=(2, 1),
                    padding=(1, 0), dilation=(1, 2), groups=2).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.timeout(300)
def test_real_lava_equals_reference_spike_for_spike():
    """Random 3-layer dense network, 3 chunks of samples on 2 workers: exercises the staggered resets."""
    _, net, frames = _case(7, n=30)
    x = input_spikes(net, frames)
    ref, lv = reference.simulate(net, x), lava.simulate(net, x, workers=2, chunk=10, progress=False)
    report = equivalence.compare(_listed(net, ref), _listed(net, lv), list(net.populations))
    assert report["identical"] == report["compared"] == 30, report["first_divergence"]
    assert all(layer["golden_spikes"] > 0 for layer in report["layers"].values())


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


@pytest.mark.timeout(300)
def test_lava_conv_with_stride_padding_and_pooling_equals_reference():
    rng = np.random.default_rng(3)
    net = pooled_network(rng)
    frames = (rng.random((16, 10, 2, 8, 8)) < 0.3).astype(np.uint8)
    x = input_spikes(net, frames)
    ref = reference.simulate(net, x)
    lv = lava.simulate(net, x, workers=2, chunk=8, progress=False)
    assert all(ref.spikes[k].sum() > 0 for k in net.populations), {k: int(v.sum()) for k, v in ref.spikes.items()}
    report = equivalence.compare(_listed(net, ref), _listed(net, lv), list(net.populations))
    assert report["identical"] == report["compared"] == 16, report["first_divergence"]


@pytest.mark.timeout(300)
def test_lava_runs_our_conv_model_identically_batched_and_one_network_per_sample():
    _, net, frames = _conv_case(11, n=12)
    x = input_spikes(net, frames)
    ref = reference.simulate(net, x)
    batched = lava.simulate(net, x, workers=2, chunk=6, progress=False)
    tail = x.copy()
    tail[:, -1] = 1                                       # a busy last step forces one network per sample
    assert lava.batch_blocker(net, tail) and lava.batch_blocker(net, x) is None
    single = lava.simulate(net, tail[:4], workers=2, progress=False)
    ref_tail = reference.simulate(net, tail[:4])
    for k in net.populations:
        np.testing.assert_array_equal(batched.spikes[k], ref.spikes[k])
        np.testing.assert_array_equal(single.spikes[k], ref_tail.spikes[k])


@pytest.mark.timeout(300)
def test_parallel_verification_gives_the_same_spikes_as_serial():
    _, net, frames = _case(8, n=16)
    x = input_spikes(net, frames)
    serial = lava.simulate(net, x, workers=1, chunk=16, progress=False)
    parallel = lava.simulate(net, x, workers=2, chunk=8, progress=False)    # 2 chunks of 8
    assert all(np.array_equal(serial.spikes[k], parallel.spikes[k]) for k in net.populations)
    assert sum(s.sum() for s in serial.spikes.values()) > 0


def test_compare_finds_the_first_divergence():
    g = [np.zeros((3, 5, 4), bool), np.zeros((3, 5, 2), bool)]
    o = [a.copy() for a in g]
    o[1][1, 2, 1] = True
    o[0][1, 3, 0] = True
    o[0][2, 0, 3] = True
    r = equivalence.compare(g, o, ["a", "b"])
    assert r["identical"] == 1 and r["compared"] == 3
    assert r["first_divergence"] == {"sample": 1, "step": 2, "layer": "b", "neuron": 1}
    assert r["layers"]["a"]["mismatched"] == 2


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


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_lava_timeout_raises_and_leaves_no_lava_processes():
    rng = np.random.default_rng(0)
    model = random_net(rng, sizes=(72, 256, 10), exps=(0, 0))
    net = read.load(to_nir(model, 0.02, 16))
    frames = (rng.random((600, 16, 2, 6, 6)) < 0.3).astype(np.uint8)       # ~15 s of Lava: longer than allowed
    before = _live_pids()
    with pytest.raises(LavaError, match="timed out after 8 s"):
        lava.simulate(net, input_spikes(net, frames), workers=1, chunk=600, timeout_s=8, progress=False)
    import time
    time.sleep(1)
    assert not _live_pids() - before


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
    x = input_spikes(net, frames)
    ref = reference.simulate(net, x)
    netx = lava.simulate(net, x, workers=2, chunk=10, progress=False, netx=str(tmp_path / "model.net"))
    report = equivalence.compare(_listed(net, ref), _listed(net, netx), list(net.populations))
    assert report["identical"] == report["compared"] == 20, report["first_divergence"]
    assert all(layer["golden_spikes"] > 0 for layer in report["layers"].values())


def test_netx_export_refuses_what_netx_cannot_store(tmp_path):
    from export import netx_export
    _, net, _ = _case(0)                      # random_net's last layer has weight_exp -2
    with pytest.raises(GraphError, match="layer fc3: weight_exp -2 < 0"):
        netx_export.write(net, tmp_path / "model.net")
    assert not (tmp_path / "model.net").exists()


def _where_am_i(_):
    import time
    time.sleep(0.3)
    return os.getpid(), tuple(sorted(os.sched_getaffinity(0)))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_parallel_lava_workers_are_pinned_to_different_cpus():
    import multiprocessing
    with pool.pool(2, multiprocessing.get_context("spawn")) as p:
        seen = dict(p.map(_where_am_i, range(6)))
    assert len(seen) == 2
    assert all(len(cpus) == 1 for cpus in seen.values())
    assert len(set(seen.values())) == 2
