"""NIR export: write/read round trip without loss, and the integer contract read back by hardware/."""
import nir
import numpy as np
import pytest

from conftest import random_net
from export.nir_export import to_nir, write
from hardware.graph import GraphError, load_chain


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


def test_hardware_reads_the_exact_integers_back(tmp_path):
    net = random_net(np.random.default_rng(1))
    write(to_nir(net, dt=0.001, n_bins=10), tmp_path / "m.nir")
    chain = load_chain(tmp_path / "m.nir")
    assert chain.n_steps == 10 + 3 and chain.input_shape == (2, 6, 6)
    for layer, L in zip(net.layers, chain.layers):
        assert np.array_equal(layer.weight, L.weight) and layer.weight_exp == L.weight_exp
        assert (layer.neuron.du, layer.neuron.dv, layer.neuron.vth, layer.neuron.bias) == (L.du, L.dv, L.vth, L.bias)


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
    with pytest.raises(GraphError, match="lif2.*missing integer metadata 'du'"):
        load_chain(g)


def test_unreadable_graph_file_is_named(tmp_path):
    (tmp_path / "x.nir").write_text("not hdf5")
    with pytest.raises(GraphError, match=r"x\.nir: not a readable NIR file"):
        load_chain(tmp_path / "x.nir")
