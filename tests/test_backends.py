"""Golden model vs integer reference vs real Lava fixed_pt, spike for spike."""
import os

import numpy as np
import pytest
import torch

from conftest import random_net
from export.nir_export import to_nir
from hardware import equivalence, graph, lava_backend, reference, workers
from models.snn import golden_spikes


def _case(seed, n=12, T=10, density=0.3):
    rng = np.random.default_rng(seed)
    net = random_net(rng)
    frames = (rng.random((n, T, 2, 6, 6)) < density).astype(np.uint8)
    return net, graph.load_chain(to_nir(net, 0.001, T)), frames


@pytest.mark.parametrize("seed", range(4))
def test_reference_equals_golden(seed):
    net, chain, frames = _case(seed, n=40)
    gold = golden_spikes(net, torch.from_numpy(frames))
    ref = reference.simulate(chain, frames)
    assert sum(int(g.sum()) for g in gold) > 100        # the network is active, not trivially silent
    assert all(np.array_equal(g, r) for g, r in zip(gold, ref))


@pytest.mark.timeout(300)
def test_real_lava_equals_reference_spike_for_spike():
    """Random 3-layer network, 3 chunks of samples on 2 workers: exercises the staggered resets."""
    _, chain, frames = _case(7, n=30)
    ref = reference.simulate(chain, frames)
    lava = lava_backend.simulate(chain, frames, workers=2, chunk=10, progress=False)
    report = equivalence.compare(ref, lava, [L.name for L in chain.layers])
    assert report["identical"] == report["compared"] == 30, report["first_divergence"]
    assert all(layer["golden_spikes"] > 0 for layer in report["layers"].values())


@pytest.mark.timeout(300)
def test_parallel_verification_gives_the_same_spikes_as_serial():
    _, chain, frames = _case(8, n=16)
    serial = lava_backend.simulate(chain, frames, workers=1, chunk=16, progress=False)
    parallel = lava_backend.simulate(chain, frames, workers=2, chunk=8, progress=False)    # 2 chunks of 8
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel)) and sum(a.sum() for a in serial) > 0


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


def test_lava_backend_refuses_bias():
    _, chain, _ = _case(0)
    biased = graph.Chain(chain.input_shape, (chain.layers[0].__class__(**{**chain.layers[0].__dict__, "bias": 3}),)
                         + chain.layers[1:], chain.n_bins, chain.n_steps, chain.dt)
    with pytest.raises(graph.GraphError, match="layer fc1: bias 3"):
        lava_backend.check_supported(biased)


def _live_pids() -> set[int]:
    """Live processes that this test process could have created: forks of it (same command line) and
    multiprocessing workers. Unrelated processes started meanwhile on the machine are not counted."""
    import os
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as f:
        ours = f.read()
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
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
    layers = (graph.Layer("fc1", rng.integers(-40, 48, (256, 2312)), 0, 1024, 256, 256, 0),
              graph.Layer("fc2", rng.integers(-40, 48, (10, 256)), 0, 1024, 256, 256, 0))
    chain = graph.Chain((2, 34, 34), layers, 16, 18, 0.02)
    frames = (rng.random((600, 16, 2, 34, 34)) < 0.055).astype(np.uint8)    # ~15 s of Lava: longer than allowed
    before = _live_pids()
    with pytest.raises(lava_backend.LavaError, match="timed out after 8 s"):
        lava_backend.simulate(chain, frames, workers=1, chunk=600, timeout_s=8, progress=False)
    import time
    time.sleep(1)
    assert not _live_pids() - before


@pytest.mark.timeout(300)
def test_netx_file_loaded_by_lava_dl_equals_reference_spike_for_spike(tmp_path):
    """The netx HDF5 file, built into a network by lava-dl's own hdf5.Network and run in Lava fixed_pt."""
    from export import netx_export
    rng = np.random.default_rng(11)
    net = random_net(rng, exps=(1, 0, 0))       # netx stores integer weights q << e: e >= 0
    frames = (rng.random((20, 10, 2, 6, 6)) < 0.3).astype(np.uint8)
    chain = graph.load_chain(to_nir(net, 0.001, 10))
    netx_export.write(chain, tmp_path / "model.net")
    ref = reference.simulate(chain, frames)
    netx = lava_backend.simulate(chain, frames, workers=2, chunk=10, progress=False, netx=str(tmp_path / "model.net"))
    report = equivalence.compare(ref, netx, [L.name for L in chain.layers])
    assert report["identical"] == report["compared"] == 20, report["first_divergence"]
    assert all(layer["golden_spikes"] > 0 for layer in report["layers"].values())


def test_netx_export_refuses_what_netx_cannot_store(tmp_path):
    from export import netx_export
    _, chain, _ = _case(0)                      # random_net's last layer has weight_exp -2
    with pytest.raises(graph.GraphError, match="layer fc3: weight_exp -2 < 0"):
        netx_export.write(chain, tmp_path / "model.net")
    assert not (tmp_path / "model.net").exists()


def _where_am_i(_):
    import os
    import time
    time.sleep(0.3)
    return os.getpid(), tuple(sorted(os.sched_getaffinity(0)))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_parallel_lava_workers_are_pinned_to_different_cpus():
    import multiprocessing
    with workers.pool(2, multiprocessing.get_context("spawn")) as p:
        seen = dict(p.map(_where_am_i, range(6)))
    assert len(seen) == 2
    assert all(len(cpus) == 1 for cpus in seen.values())
    assert len(set(seen.values())) == 2
