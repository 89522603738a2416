"""Third-party NIR readers on our exported graph: what each gets right and wrong (documented in README).

- ``nir.read``: everything (nodes, weights, continuous parameters, node and graph metadata); see test_nir.py.
- nirtorch 2.6 ``nir_to_torch``: the topology (edges, execution order); neuron semantics are up to the node map.
- snnTorch 1.0 ``import_from_nir``: refuses our CubaLIF nodes. It assumes dt = 1e-4 s and Euler's convention
  r = tau_mem / dt, while our nodes carry the exact (exponential) discretisation at the graph's dt.
"""
import nir
import numpy as np
import pytest
import torch
from conftest import random_net
from test_backends import conv_model

from export import nir_export


@pytest.fixture
def graph(tmp_path):
    net = random_net(np.random.default_rng(3))
    nir_export.write(nir_export.to_nir(net, 1e-3, 8), tmp_path / "m.nir")
    return net, nir.read(str(tmp_path / "m.nir"))


def test_nirtorch_executes_our_topology_in_order(graph):
    import nirtorch
    net, g = graph

    def linear(node):
        layer = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
        layer.weight.data = torch.tensor(node.weight, dtype=torch.float32)
        return layer
    module = nirtorch.nir_to_torch(g, {nir.Linear: linear, nir.Flatten: lambda n: torch.nn.Flatten(start_dim=1),
                                       nir.CubaLIF: lambda n: torch.nn.Identity()})
    x = torch.rand(5, *net.input_shape, dtype=torch.float32)
    expected = x.flatten(1)
    for layer in net.layers:                  # with neurons as identities the chain is W3 W2 W1 x
        expected = expected @ torch.tensor(layer.weight * 2.0**layer.weight_exp, dtype=torch.float32).T
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-3)   # float32 sums of integer-valued products


def test_snntorch_refuses_our_cuba_nodes(graph):
    from snntorch.import_nir import import_from_nir
    with pytest.raises(AssertionError, match="r not supported in CubaLIF"):
        import_from_nir(graph[1])


def test_nirtorch_runs_our_conv_graph_topology():
    """Conv2d -> CubaLIF -> Conv2d -> CubaLIF -> Flatten -> Linear ...: with neurons as identities nirtorch computes
    the linear chain of our kernels and matrices, which torch computes too."""
    import nirtorch
    import torch.nn.functional as F
    net = conv_model(0)
    g = nir_export.to_nir(net, 1e-3, 10)
    assert {type(n).__name__ for n in g.nodes.values()} == {"Input", "Conv2d", "CubaLIF", "Flatten", "Linear",
                                                              "Output"}

    def conv(node):
        layer = torch.nn.Conv2d(node.weight.shape[1], node.weight.shape[0], node.weight.shape[2],
                                stride=tuple(int(v) for v in node.stride),
                                padding=tuple(int(v) for v in node.padding), bias=False)
        layer.weight.data = torch.tensor(node.weight, dtype=torch.float32)
        return layer

    def linear(node):
        layer = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
        layer.weight.data = torch.tensor(node.weight, dtype=torch.float32)
        return layer
    module = nirtorch.nir_to_torch(g, {nir.Conv2d: conv, nir.Linear: linear, nir.Flatten: lambda n: torch.nn.Flatten(1),
                                       nir.CubaLIF: lambda n: torch.nn.Identity()})
    x = torch.rand(3, *net.input_shape, dtype=torch.float32)
    expected = x
    for layer in net.layers:
        w = torch.tensor(layer.weight * 2.0**layer.weight_exp, dtype=torch.float32)
        expected = (F.conv2d(expected, w, stride=layer.conv.stride, padding=layer.conv.padding) if layer.conv
                    else expected.flatten(1) @ w.T)
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    assert torch.allclose(out, expected, rtol=1e-4, atol=1e-2)
