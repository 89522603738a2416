"""NIR export: write/read round trip without loss, and the integer contract read back by hardware/."""
import nir
import numpy as np
import pytest
from conftest import random_net
from test_backends import conv_model

from export.nir_export import to_nir, write
from hardware.errors import GraphError
from hardware.graph import read


def _same(a, b) -> bool:
    if isinstance(a, bytes):
        a = a.decode()
    if isinstance(b, bytes):
        b = b.decode()
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=False) \
            if a.dtype.kind != "f" else a.shape == b.shape and np.array_equal(a, b)
    return a == b


def test_write_read_round_trip_is_lossless(tmp_path):
    graph = to_nir(random_net(np.random.default_rng(0)), dt=0.019375, n_bins=10)
    write(graph, tmp_path / "m.nir")
    back = nir.read(tmp_path / "m.nir")
    assert back.nodes.keys() == graph.nodes.keys() and sorted(back.edges) == sorted(graph.edges)
    assert _same(graph.metadata, back.metadata)
    for name, node in graph.nodes.items():
        other = back.nodes[name]
        assert type(other) is type(node), name
        for field in node.__dataclass_fields__:
            assert _same(getattr(node, field), getattr(other, field)), (name, field)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_hardware_reads_the_exact_integers_back(kind, tmp_path):
    net = random_net(np.random.default_rng(1)) if kind == "dense" else conv_model(1)
    write(to_nir(net, dt=0.001, n_bins=10), tmp_path / "m.nir")
    back = read.load(tmp_path / "m.nir")
    assert back.exact and back.n_steps == 10 + len(net.layers) and back.input_shape == net.input_shape
    # each layer is named by its neuron node (lif1, lif2, ...): the name vectors.h5 and the graph use
    assert list(back.populations) == [f"lif{k}" for k in range(1, len(net.layers) + 1)]
    for k, (layer, p) in enumerate(zip(net.layers, back.projections), start=1):
        pop = back.populations[p.target]
        assert p.target == f"lif{k}" and p.synapse.kind == ("conv" if layer.conv else "dense")
        assert np.array_equal(layer.weight, p.synapse.weight) and layer.weight_exp == p.synapse.exp
        assert (layer.neuron.du, layer.neuron.dv, layer.neuron.vth) == (pop.du, pop.dv, pop.vth)
        assert np.all(pop.bias == layer.neuron.bias) and pop.shape == layer.out_shape
        if layer.conv:
            assert (p.synapse.stride, p.synapse.padding) == ((layer.conv.stride,) * 2, (layer.conv.padding,) * 2)


def test_continuous_parameters_reproduce_the_decays():
    net = random_net(np.random.default_rng(2))
    node = to_nir(net, dt=0.002, n_bins=10).nodes["lif1"]
    p = net.layers[0].neuron
    assert np.allclose(np.exp(-0.002 / node.tau_syn), p.u_keep / 4096)
    assert np.allclose(np.exp(-0.002 / node.tau_mem), p.v_keep / 4096)
    assert np.all(node.v_threshold == p.vth * 64) and np.all(node.v_reset == 0)


def test_graph_without_integer_metadata_is_refused_naming_the_node():
    g = to_nir(random_net(np.random.default_rng(3)), dt=0.001, n_bins=10)
    g.nodes["lif2"].metadata = {}
    with pytest.raises(GraphError, match="lif2.*CubaLIF nodes with integer metadata only"):
        read.load(g, exact=True)


def test_unreadable_graph_file_is_named(tmp_path):
    (tmp_path / "x.nir").write_text("not hdf5")
    with pytest.raises(GraphError, match=r"x\.nir: not a readable NIR file"):
        read.load(tmp_path / "x.nir")


@pytest.mark.parametrize("arch", ["conv", "recurrent"])
def test_a_trained_model_is_written_from_its_hardware_network_and_reads_back_as_it(arch, tmp_path):
    """One NIR writer: to_nir writes the model's hardware network (export/nir_export.network), and reading the
    file gives that network back: every population, projection, weight, delay and the steps."""
    from export.nir_export import network
    from pipeline.architecture import build_model
    from pipeline.config import RunConfig, apply_overrides
    items, shape = (["model.arch=conv", "model.hidden=16"], (2, 12, 12)) if arch == "conv" else \
        (["model.arch=recurrent", "model.hidden=8", "model.recurrent_layers=2"], (6,))
    model = build_model(apply_overrides(RunConfig(), items), shape, 3).deployed()
    built = network(model, 1e-3, 8)
    write(to_nir(model, 1e-3, 8), tmp_path / "m.nir")
    back = read.load(tmp_path / "m.nir")
    assert list(back.populations) == list(built.populations) and back.readout == built.readout
    assert (back.n_bins, back.n_steps, back.dt) == (built.n_bins, built.n_steps, built.dt)
    for k, pop in built.populations.items():
        got = back.populations[k]
        assert (got.shape, got.du, got.dv, got.vth) == (pop.shape, pop.du, pop.dv, pop.vth)
        assert np.array_equal(got.bias_mant << got.bias_exp, pop.bias_mant << pop.bias_exp)
    key = lambda p: (p.source, p.target)   # noqa: E731
    assert sorted(map(key, back.projections)) == sorted(map(key, built.projections))
    for p in built.projections:
        q = next(b for b in back.projections if key(b) == key(p))
        assert type(q.synapse) is type(p.synapse) and q.synapse.exp == p.synapse.exp and q.delay == p.delay
        assert np.array_equal(q.synapse.weight, p.synapse.weight) and q.path == p.path
    if arch == "recurrent":
        assert sum(isinstance(n, nir.NIRGraph) for n in to_nir(model, 1e-3, 8).nodes.values()) == 2
