"""`pipeline verify`: NIR graphs we did not write, read, quantised and run three ways (float, integer, real Lava)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import cli
from graphs import DT, GRAPHS, _full, conv2d_delay, dense_recurrent, nirtorch_graph

from hardware.backends import reference
from hardware.errors import GraphError
from hardware.graph import compose, linear_ops, read
from hardware.graph.ir import FloatModel, FloatPopulation, Network
from pipeline.commands.verify import verify
from pipeline.commands.verify_input import load_input
from pipeline.jobs import verify_job

ROOT = Path(__file__).resolve().parents[1]
COVERED = {"Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d",
           "Scale", "Threshold", "IF", "LI", "LIF", "CubaLIF", "CubaLI", "I", "Delay", "NIRGraph"}


def test_the_hand_built_graphs_cover_every_supported_node_type():
    seen = set()

    def visit(g):
        for node in g.nodes.values():
            seen.add(type(node).__name__)
            if isinstance(node, nir.NIRGraph):
                visit(node)
    for make in GRAPHS.values():
        visit(make(np.random.default_rng(0)))
    assert seen == COVERED


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_node_type_verifies_on_real_lava_identical_to_the_reference(name, tmp_path):
    path = tmp_path / f"{name}.nir"
    nir.write(path, GRAPHS[name](np.random.default_rng(0)))
    report = verify(path, tmp_path / "out", verify_job(dt=DT, samples=2, steps=25, rate=0.3), progress=False).to_json()
    lava, flt = report["backends"]["lava"], report["backends"]["float graph"]
    assert lava["against"].startswith("integer reference") and lava["certifies"] and lava["compared"] == 2
    assert lava["identical"] == 2, lava["first_divergence_text"]
    assert all(v.get("voltage_mismatched", 0) == 0 for v in lava["layers"].values())
    # the comparison is only worth something if every layer is active
    for row in report["float"]:
        if "voltage_cosine" in row:      # quantisation moves a readout's voltage, but only a little
            assert 0 < row["voltage_max_abs_error"] and row["voltage_cosine"] > 0.9, row
        else:
            assert row["integer_spikes"] > 0, row
            assert row["activity_cosine"] > 0.9, row
    assert flt["certifies"] is False and flt["compared"] == 2
    assert {r["layer"] for r in report["quantisation"]} == {r["layer"] for r in report["float"]}
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<img") >= 2 and "Quantisation" in page
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verdict"] == "IDENTICAL"


def test_float_and_integer_simulations_differ_only_by_quantisation():
    """Give the float model the integers' own values: then both simulations must agree spike for spike where the
    float decays cannot differ from Loihi's truncation (IF: no decay; Threshold: cleared every step)."""
    net = read.load(conv2d_delay(np.random.default_rng(0)), dt=DT)
    pops = {k: FloatPopulation((4095 - p.du) / 4096, (4096 - p.dv) / 4096,
                               np.full(p.size, p.vth * 64.0) if p.spiking else net.float_model.populations[k].theta,
                               p.bias.astype(float), p.v0.astype(float), net.float_model.populations[k].scale)
            for k, p in net.populations.items()}
    exact = Network(**{**net.__dict__, "float_model": FloatModel(pops, tuple(
        p.synapse.weight * 2.0**p.synapse.exp for p in net.projections))})
    x = (np.random.default_rng(2).random((3, 25, 72)) < 0.3).astype(np.int64)
    f, i = reference.simulate(exact, x, integer=False), reference.simulate(exact, x, integer=True)
    assert sum(int(i.spikes[k].sum()) for k in i.spikes) > 0
    checked = 0
    for k in f.spikes:
        if net.populations[k].dv == 0 and net.populations[k].du == 4095:
            np.testing.assert_array_equal(f.spikes[k], i.spikes[k])
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("kind", ["conv2d", "conv1d", "avg", "sum"])
def test_convolution_and_pooling_matrices_equal_pytorch(kind):
    import torch
    import torch.nn.functional as F
    rng = np.random.default_rng(4)
    if kind == "conv2d":
        node = nir.Conv2d(input_shape=(7, 6), weight=rng.normal(size=(6, 2, 3, 2)), stride=(2, 1), padding=1,
                          dilation=(1, 2), groups=2, bias=np.zeros(6))
        shape = (4, 7, 6)
        torch_fn = lambda x: F.conv2d(x, torch.tensor(node.weight), None, (2, 1), 1, (1, 2), 2)  # noqa: E731
    elif kind == "conv1d":
        node = nir.Conv1d(input_shape=9, weight=rng.normal(size=(3, 2, 3)), stride=2, padding=2, dilation=1,
                          groups=1, bias=np.zeros(3))
        shape = (2, 9)
        torch_fn = lambda x: F.conv1d(x, torch.tensor(node.weight), None, 2, 2)  # noqa: E731
    else:
        cls = nir.AvgPool2d if kind == "avg" else nir.SumPool2d
        node = cls(kernel_size=np.array([3, 2]), stride=np.array([2, 2]), padding=np.array([1, 0]))
        shape = (3, 7, 6)
        torch_fn = lambda x: F.avg_pool2d(x, (3, 2), (2, 2), (1, 0)) * (1 if kind == "avg" else 6)  # noqa: E731
    op = linear_ops.linear_op("node", node, shape)
    x = rng.normal(size=shape)
    expected = torch_fn(torch.tensor(x)[None])[0].numpy()
    assert op.out_shape == expected.shape and op.conv is not None          # kept as a convolution
    np.testing.assert_allclose(linear_ops.apply_op(op, x.ravel()[None])[0], expected.ravel(), atol=1e-12)
    np.testing.assert_allclose(linear_ops.op_matrix(op) @ x.ravel(), expected.ravel(), atol=1e-12)


@pytest.mark.parametrize("first, second, pad", [("pool", "conv", 1), ("conv", "conv", 0), ("conv", "pool", 0),
                                                ("conv", "conv", 1)])
def test_two_convolutions_compose_into_one_where_exact(first, second, pad):
    """A path of two convolutions (e.g. sum pooling then a padded convolution, as a CNN's LIF -> SumPool2d ->
    Conv2d -> LIF writes it) is one convolution on Loihi when that is exact; else it is unrolled."""
    rng = np.random.default_rng(7)
    make = {"pool": lambda c, pad: nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                  padding=np.array([0, 0])),
            "conv": lambda c, pad: nir.Conv2d(input_shape=(8, 8), weight=rng.normal(size=(c, c, 3, 3)), stride=1,
                                              padding=pad, dilation=1, groups=1, bias=np.zeros(c))}
    a = linear_ops.linear_op("a", make[first](3, 0), (3, 8, 8))
    b = linear_ops.linear_op("b", make[second](3, pad), a.out_shape)
    syn = compose.compose([a, b], 3 * 8 * 8)
    x = rng.normal(size=(2, 3 * 8 * 8))
    want = linear_ops.apply_op(b, linear_ops.apply_op(a, x))
    got = syn.synapse.weight @ x.T if syn.synapse.kind == "dense" else linear_ops.apply_op(
        linear_ops.Op("ab", (3, 8, 8), b.out_shape, conv=syn.synapse), x).T
    np.testing.assert_allclose(got.T, want, atol=1e-9)
    exact = not (first == "conv" and pad)           # a padded conv after a padded conv: its border is not zero
    assert (syn.synapse.kind == "conv") == exact


def test_our_exporters_continuous_parameters_read_back_to_the_same_decays():
    """A round trip through NIR's continuous-time fields alone (our integer metadata ignored: --dt given)."""
    from conftest import random_net

    from export.nir_export import to_nir
    deployed = random_net(np.random.default_rng(3), exps=(1, 0, 2))
    net = read.load(to_nir(deployed, 1e-3, 8), dt=1e-3)
    assert len(net.populations) == len(deployed.layers) == 3 and not net.exact
    for layer, pop in zip(deployed.layers, net.populations.values()):     # includes du = 4095, dv = 0, 4095
        assert (pop.du, pop.dv) == (layer.neuron.du, layer.neuron.dv)


def test_our_weights_read_back_exactly_through_continuous_fields_with_a_mantissa_of_minus_128():
    """int8 is asymmetric: -128 * 2**e fits the exponent e, +128 * 2**e does not. QAT's clamp reaches -128; a
    graph of ours read through its continuous fields (thresholds a power of two times 2048) gets its weights back
    exactly only if the exponent is chosen for the range [-128, 127]."""
    from dataclasses import replace

    from conftest import random_net

    from export.nir_export import to_nir
    from hardware.graph.quantise import error_table
    deployed = random_net(np.random.default_rng(3), exps=(1, 0, 2))
    layers = tuple(replace(layer, neuron=replace(layer.neuron, vth=256)) for layer in deployed.layers)
    for layer in layers:
        layer.weight[0, 0] = -128
    net = read.load(to_nir(replace(deployed, layers=layers), 1e-3, 8), dt=1e-3)
    for layer, proj, pop in zip(layers, net.projections, net.populations.values()):
        # the same effective weight relative to the threshold, compared as whole numbers: q 2**e / vth
        q_read = proj.synapse.weight.astype(object)
        lhs = q_read * layer.neuron.vth * 2**(proj.synapse.exp - min(proj.synapse.exp, layer.weight_exp))
        rhs = layer.weight.astype(object) * pop.vth * 2**(layer.weight_exp - min(proj.synapse.exp, layer.weight_exp))
        assert np.array_equal(lhs, rhs), layer.name
    rows = error_table(net)
    assert [row["weights_exact"] for row in rows] == [True] * 3
    assert [row["weight_rel_rms_error"] for row in rows] == [0.0] * 3


def test_nir_recorded_data_containers_are_inputs():
    net = read.load(dense_recurrent(np.random.default_rng(0)), dt=DT)
    data = np.random.default_rng(0).random((2, 15, 12)) < 0.3
    x, what = load_input(nir.TimeGriddedData(data, DT), net, 4, None, 0.2, 0)
    np.testing.assert_array_equal(x, data)
    events = nir.TimeGriddedData(data, DT).to_event(n_events=200)
    x2, _ = load_input(events, net, 4, None, 0.2, 0)
    np.testing.assert_array_equal(x2[:, :15], data)
    with pytest.raises(GraphError, match="dt"):
        load_input(nir.TimeGriddedData(data, 2 * DT), net, 4, None, 0.2, 0)


def test_snntorch_convention_gives_back_beta_v_plus_input():
    beta, dt = 0.9, 1e-4
    tau = dt / (1 - beta)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1])}),
                            "w": nir.Linear(weight=np.array([[0.3]])),
                            "lif": nir.LIF(tau=np.array([tau]), r=np.array([tau / dt]), v_leak=np.zeros(1),
                                           v_threshold=np.array([1.0]), v_reset=np.zeros(1)),
                            "output": nir.Output(output_type={"output": np.array([1])})},
                     edges=[("input", "w"), ("w", "lif"), ("lif", "output")])
    net = read.load(g, source="snntorch")
    assert net.method == "euler" and net.dt == dt and net.float_model.populations["lif"].beta == pytest.approx(beta)
    x = np.ones((1, 12, 1), np.int64)
    f = reference.simulate(net, x, integer=False)
    v, expected = 0.0, []            # snnTorch Leaky: v = beta v + 0.3 x, spike when v > 1, reset to zero
    for t in range(12):
        v = beta * v + (0.3 if t >= 1 else 0.0)      # one step through the synapse, as on Lava
        expected.append(v > 1.0)
        v = 0.0 if v > 1.0 else v
    np.testing.assert_array_equal(f.spikes["lif"][0, :, 0], expected)


def test_older_layout_without_v_reset_reads_as_zero_reset(tmp_path):
    path = tmp_path / "old.nir"
    nir.write(path, conv2d_delay(np.random.default_rng(0)))
    with h5py.File(path, "r+") as f:             # NIR 0.2 files have no v_reset on IF/LIF/CubaLIF
        del f["node/nodes/if1/v_reset"]
    net = read.load(path, dt=DT)
    assert np.all(net.populations["if1"].v0 == 0)


@dataclass(eq=False)
class Gamma(nir.NIRNode):
    """A node type of some future NIR version."""
    k: np.ndarray = None

    def __post_init__(self):
        self.input_type = {"input": np.array([2])}
        self.output_type = {"output": np.array([2])}


@pytest.mark.parametrize("case, message", [
    ("unknown", "node 'g': type Gamma is not supported"),
    ("decays", "node 'lif': tau differs between neurons"),
    ("linear_out", "node 'output': fed by a linear path"),
    ("no_dt", "give --dt"),
    ("reset", "v_threshold must exceed v_reset"),
])
def test_unsupported_graphs_get_one_clear_error(case, message):
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}), "w": nir.Linear(weight=np.ones((2, 3))),
             "lif": nir.LIF(tau=_full(2, 1e-2), r=_full(2, 1), v_leak=_full(2, 0), v_threshold=_full(2, 1),
                            v_reset=_full(2, 0)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "w"), ("w", "lif"), ("lif", "output")]
    dt = DT
    if case == "unknown":
        nodes["g"] = Gamma(k=np.ones(2))
        edges = [("input", "w"), ("w", "g"), ("g", "lif"), ("lif", "output")]
    elif case == "decays":
        nodes["lif"].tau = np.array([1e-2, 2e-2])
    elif case == "linear_out":
        nodes["w2"] = nir.Linear(weight=np.ones((2, 2)))
        edges = [("input", "w"), ("w", "lif"), ("lif", "w2"), ("w2", "output")]
    elif case == "no_dt":
        dt = None
    elif case == "reset":
        nodes["lif"].v_reset = _full(2, 2.0)
    with pytest.raises(GraphError, match=message) as e:
        read.load(nir.NIRGraph(nodes=nodes, edges=edges), dt=dt)
    assert "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_verifies_a_graph_written_by_nirtorch_from_given_spikes(tmp_path):
    """A graph from another library: nirtorch's torch_to_nir on a torch model with a user-defined LIF module."""
    graph_obj, dt = nirtorch_graph()
    graph = tmp_path / "nirtorch.nir"
    nir.write(graph, graph_obj)
    spikes = tmp_path / "spikes.npy"
    np.save(spikes, np.random.default_rng(0).random((20, 2, 6, 6)) < 0.3)     # (T, *input): one sample
    out = tmp_path / "report"
    r = cli("verify", str(graph), "--source", "snntorch", "--input", str(spikes), "--steps", "24",
             "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "IDENTICAL" in r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 1 and report["steps"] == 24
    assert report["backends"]["lava"]["identical"] == report["backends"]["lava"]["compared"] == 1
    assert all(row["integer_spikes"] > 0 for row in report["float"]), report["float"]
    assert (out / "report.html").exists() and (out / "rasters.png").exists()
    # the Conv2d ran as Lava's Conv with its 4 x 2 x 3 x 3 kernel, not as an unrolled matrix
    kinds = {p["projection"]: (p["kind"], p["weights"]) for p in report["projections"]}
    assert kinds["input->_1"] == ("conv", [4, 2, 3, 3]) and "projections: conv, dense" in r.stdout
    layer = next(row for row in report["loihi2"]["resources"]["layers"] if row["layer"] == "_1")
    assert layer["synapses"] == 72 and layer["unrolled_synapses"] == 4 * 6 * 6 * 2 * 3 * 3

    # the hand-off: the graph as quantised, read back exactly, re-checked from the folder in a fresh process
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["kind"] == "verify" and set(cert["files_sha256"]) == {"model.nir", "vectors.h5"}
    assert any(n.startswith("model.net not written: layer _1: a bias") for n in cert["not_checked"])
    r = cli("recheck", str(out))
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert "lava: 1/1 samples spike-identical in every layer and step it computed" in r.stdout

    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((20, 3, 6, 6)))
    r = cli("verify", str(graph), "--source", "snntorch", "--input", str(bad), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
