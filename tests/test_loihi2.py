"""Loihi 2 limits: each kind of violation found in a hand-built bad graph; resources, activity and energy."""
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import random_net
from graphs import foreign_graph, nirtorch_graph
from test_backends import conv_model

from export import nir_export
from hardware.chip import loihi2
from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph import read

STATE_BITS = Limits().state_bits   # the chip's u and v width, given to the model

ROOT = Path(__file__).resolve().parents[1]


def good_graph(exps=(1, 0, -2)) -> nir.NIRGraph:
    return nir_export.to_nir(random_net(np.random.default_rng(0), exps=exps), 1e-3, 8)


def check(g, **kw):
    return loihi2.check(read.load(g), **kw)


def test_the_exported_graph_passes():
    assert check(good_graph()) == []


BAD = [  # (node, metadata key, bad value, what the violation names, parameter)
    ("fc1", "weight_mantissa", lambda w: np.where(np.arange(w.size).reshape(w.shape) == 0, 200, w), "input->lif1",
     "weight_mantissa"),
    ("fc2", "weight_exp", lambda _: 9, "lif1->lif2", "weight_exp"),
    ("lif1", "du", lambda _: 5000, "lif1", "du"),                  # a layer is named by its neuron node
    ("lif2", "dv", lambda _: -1, "lif2", "dv"),
    ("lif3", "vth", lambda _: 2**17, "lif3", "vth"),
    ("lif1", "bias_mant", lambda _: 5000, "lif1", "bias_mant"),
    ("lif2", "bias_exp", lambda _: 8, "lif2", "bias_exp"),
]


@pytest.mark.parametrize("node,key,bad,named,parameter", BAD, ids=[b[1] for b in BAD])
def test_each_parameter_violation_is_named(node, key, bad, named, parameter):
    g = good_graph()
    g.nodes[node].metadata[key] = bad(g.nodes[node].metadata.get(key, 0))
    found = check(g)
    assert [(v.node, v.parameter) for v in found] == [(named, parameter)], found
    assert str(found[0]).startswith(f"{named}: {parameter} = ") and "violates" in str(found[0])


@pytest.mark.parametrize("delay", [70, 10**9])
def test_a_delay_beyond_loihi_2s_limit_is_refused_before_anything_is_allocated(delay):
    """The reference and Lava allocate a buffer per step of delay: a graph asking for more than the chip can
    delay a spike (62 steps, 63 with the synapse's own) is refused as it is read, naming the node."""
    g = good_graph()
    g.nodes["fc3"].metadata["delay"] = delay
    with pytest.raises(GraphError, match=f"node 'fc3': integer metadata delay holds delays of {delay}..{delay} steps; "
                                         "a delay is 1..63 steps"):
        read.load(g)


def test_too_many_time_steps():
    g = good_graph()
    g.metadata["n_steps"] = 300         # the NIR paper's N-MNIST CNN at its native 1 ms bins, run there on Loihi 2
    assert check(g) == []
    bound = Limits().max_steps
    g.metadata["n_steps"] = bound + 1
    assert [(v.node, v.parameter, v.value) for v in check(g)] == [("graph", "n_steps", bound + 1)]
    assert check(g, limits=Limits(max_steps=bound + 1)) == []      # a setting: a larger bound admits it


def test_fan_in_beyond_a_core():
    from models.neuron import CubaParams
    from models.snn import DeployedNet, IntLayer
    net = DeployedNet((2, 50, 50), (IntLayer("fc1", np.ones((4, 5000), np.int8), 0, CubaParams(0, 0, 10, state_bits=STATE_BITS)),))
    found = check(nir_export.to_nir(net, 1e-3, 4))
    assert [(v.node, v.parameter, v.value) for v in found] == [("lif1", "fan_in", 5000)]


def test_more_cores_than_the_chip_has():
    found = check(good_graph(), resources=loihi2.Resources(cores_per_chip=2))
    assert [(v.node, v.parameter) for v in found] == [("graph", "cores")] and found[0].value == 3


def test_resource_estimate_partitions_by_synaptic_memory():
    r = loihi2.Resources(synapse_memory_bits_per_core=72 * 8 * 16)      # 16 neurons of fan-in 72 per core
    est = loihi2.estimate(read.load(good_graph()), r)
    # 40 neurons of fan-in 72 -> 3 cores; 30 of fan-in 40 (28 per core) -> 2; 5 of fan-in 30 -> 1
    assert [L["cores"] for L in est["layers"]] == [3, 2, 1]
    assert est["cores"] == 6 and est["layers"][0]["neurons_per_core"] == 14


def test_activity_counts_synops_spikes_and_sparsity():
    net = read.load(good_graph())
    B, n = 2, net.n_steps
    inp = np.zeros((B, n, 72), np.int64)
    inp[0, 0, :3] = 1                                                    # 3 input spikes in sample 0
    spikes = {k: np.zeros((B, n, p.size), bool) for k, p in net.populations.items()}
    spikes["lif1"][1, 2, :4] = True                                      # 4 hidden spikes in sample 1
    a = loihi2.activity(net, inp, spikes)
    # per inference: 3 spikes x 40 targets / 2 samples, 4 spikes x 30 targets / 2 samples
    assert [L.synops for L in a.layers] == [60.0, 60.0, 0.0]
    assert a.synops == 120.0 and a.spikes == 2.0
    assert a.layers[0].sparsity == 1 - 2 / (40 * n)
    # the estimate as computed (unrounded: a wrong per-operation energy changes it), then as rendered
    expected_pj = 120 * 23.6 + 2 * 81.0 + (75 * n - 2) * 52.0 + 2 * 1.7
    assert a.energy_pj == pytest.approx(expected_pj, rel=1e-12)
    assert a.to_dict()["per_inference"]["energy_uj_estimate"] == round(expected_pj * 1e-6, 4)
    assert a.to_dict()["layers"][0]["sparsity"] == round(1 - 2 / (40 * n), 4)


def test_check_command(tmp_path):
    good, bad = tmp_path / "good.nir", tmp_path / "bad.nir"
    nir.write(str(good), good_graph())
    g = good_graph()
    g.nodes["lif3"].metadata["vth"] = 2**17
    g.nodes["lif3"].v_threshold[:] = 2**17 * 64             # consistent: the file says one thing twice
    nir.write(str(bad), g)
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipeline", "check", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    ok = run(str(good))
    assert ok.returncode == 0 and "within Loihi 2's limits" in ok.stdout and "lif1 (dense): 40 neurons" in ok.stdout
    no = run(str(bad))
    assert no.returncode == 1 and "violation: lif3: vth = 131072 violates 17-bit threshold mantissa" in no.stdout


def test_training_cannot_produce_a_graph_the_check_rejects():
    """QAT clamps weights to int8 and the config bounds every neuron parameter: extreme settings still fit."""
    import torch

    from pipeline.architecture import build_model
    from pipeline.config import RunConfig, apply_overrides
    cfg = apply_overrides(RunConfig(), ["model.hidden=8", "model.du=4095", "model.dv=4095", "model.vth_hidden=131071",
                                        "model.vth_out=0", "model.weight_exp=7"])
    model = build_model(cfg, (2, 6, 6), 3)
    with torch.no_grad():
        model.weights[0].mul_(1000.0)           # far beyond int8 in float
    net = model.deployed()
    assert net.layers[0].weight.min() == -128 and net.layers[0].weight.max() == 127
    assert check(nir_export.to_nir(net, 1e-3, cfg.data.max_bins)) == []


def test_a_convolution_stores_its_kernel_once():
    """conv_model: 4 x 2 x 3 x 3 and 6 x 4 x 3 x 3 kernels; stored once, not once per neuron."""
    net = read.load(nir_export.to_nir(conv_model(0), 1e-3, 8))
    est = loihi2.estimate(net)
    conv1, conv2 = est["layers"][:2]
    assert conv1["synapses"] == 4 * 2 * 3 * 3 and conv1["unrolled_synapses"] == 4 * 6 * 6 * 2 * 3 * 3
    assert conv2["synapses"] == 6 * 4 * 3 * 3 and conv1["kind"].startswith("conv 3x3/2")
    assert conv1["cores"] == 1 and conv1["input_axons"] == 2 * 12 * 12
    assert loihi2.estimate_unrolled(net)["cores"] >= est["cores"]


def test_conv_partitioning_respects_memory_neurons_and_axons():
    from hardware.graph.ir import Conv
    conv = Conv(np.ones((64, 32, 3, 3), np.int64), 0, (32, 64, 64), (1, 1), (1, 1))
    r = loihi2.Resources()
    row = loihi2._conv_layer("c", conv, r)
    # a core: c channels x t rows x u columns <= 8192 neurons, c x 288 8-bit kernels in memory, and the input
    # window of its tile (32 channels x (t + 2) rows x (u + 2) columns, clipped to the map) within 4096 axons
    c, t, u = row["channels_per_core"], row["rows_per_core"], row["columns_per_core"]
    assert c * t * u <= r.neurons_per_core and c * 32 * 9 * 8 <= r.synapse_memory_bits_per_core
    assert row["input_axons"] == 32 * min(64, t + 2) * min(64, u + 2) <= r.axons_per_core
    assert row["cores"] == -(-64 // c) * -(-64 // t) * -(-64 // u) and row["cores"] < 64 * 64


@pytest.mark.parametrize("which", ["plain LIF", "nirtorch CNN"])
def test_check_estimates_graphs_from_other_frameworks(which, tmp_path):
    if which == "plain LIF":
        nir.write(tmp_path / "g.nir", foreign_graph())
        args = ()
    else:
        g, dt = nirtorch_graph()
        nir.write(tmp_path / "g.nir", g)
        args = ("--source", "snntorch")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "check", str(tmp_path / "g.nir"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "discretised" in proc.stdout and "within Loihi 2's limits" in proc.stdout
    if which == "nirtorch CNN":
        assert "conv 3x3/1" in proc.stdout and "72 kernel synapses (unrolled 2,592)" in proc.stdout
