"""Test graphs: NIR graphs as other frameworks write them (continuous parameters only), covering every node type
`verify` reads. ``benchmarks/foreign_graphs.py`` runs them too."""
from __future__ import annotations

import nir
import numpy as np

DT = 1e-3


def foreign_graph():
    """Input(6) -> Affine -> LIF(5) -> Linear -> CubaLIF(3) -> Output: a small graph as another framework writes
    it (continuous parameters only), active at dt = 1 ms under random input."""
    rng = np.random.default_rng(0)
    full = lambda n, v: np.full(n, float(v))       # noqa: E731
    nodes = {
        "input": nir.Input({"input": np.array([6])}),
        "fc": nir.Affine(weight=rng.normal(1.0, 0.5, (5, 6)), bias=full(5, 0.1)),
        "lif": nir.LIF(tau=full(5, 0.005), r=full(5, 4.0), v_leak=full(5, 0), v_threshold=full(5, 1),
                       v_reset=full(5, 0)),
        "out": nir.Linear(weight=rng.normal(1.0, 0.5, (3, 5))),
        "cuba": nir.CubaLIF(tau_syn=full(3, 0.002), tau_mem=full(3, 0.005), r=full(3, 4.0), v_leak=full(3, 0),
                            v_threshold=full(3, 1), v_reset=full(3, 0), w_in=full(3, 1)),
        "output": nir.Output({"output": np.array([3])}),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "out"), ("out", "cuba"), ("cuba", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})


def conv_graph():
    """Input(1, 6, 6) -> Conv2d (stride 1, padding 1) -> LIF -> SumPool2d -> Flatten -> Linear -> LIF -> Output,
    continuous parameters only: the convolution and pooling fields, as another framework writes them."""
    rng = np.random.default_rng(1)
    full = lambda shape, v: np.full(shape, float(v))       # noqa: E731
    lif = lambda shape: nir.LIF(tau=full(shape, 0.005), r=full(shape, 4.0), v_leak=full(shape, 0),  # noqa: E731
                                v_threshold=full(shape, 1), v_reset=full(shape, 0))
    nodes = {
        "input": nir.Input({"input": np.array([1, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.8, 0.3, (2, 1, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.zeros(2)),
        "lif1": lif((2, 6, 6)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(0.5, 0.3, (3, 18))),
        "lif2": lif((3,)),
        "output": nir.Output({"output": np.array([3])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata={"dt": DT})


def _full(shape, value):
    return np.full(shape, float(value))


def dense_recurrent(rng) -> nir.NIRGraph:
    """Affine (with bias) -> LIF -> Linear -> recurrent CubaLIF subgraph -> Linear -> CubaLI readout."""
    h, o, k = 10, 6, 3
    rnn = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([o])}),
        "lif": nir.CubaLIF(tau_syn=_full(o, 4e-3), tau_mem=_full(o, 8e-3), r=_full(o, 10), v_leak=_full(o, 0.05),
                           v_threshold=_full(o, 0.5), v_reset=_full(o, -0.1), w_in=_full(o, 1)),
        "w_rec": nir.Affine(weight=rng.normal(0, 0.4, (o, o)), bias=np.zeros(o)),
        "output": nir.Output(output_type={"output": np.array([o])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([12])}),
        "fc1": nir.Affine(weight=rng.normal(0.1, 0.6, (h, 12)), bias=rng.normal(0.02, 0.02, h)),
        "lif1": nir.LIF(tau=_full(h, 5e-3), r=_full(h, 4), v_leak=_full(h, 0), v_threshold=_full(h, 0.5),
                        v_reset=_full(h, 0)),
        "fc2": nir.Linear(weight=rng.normal(0.2, 0.5, (o, h))),
        "rnn": rnn,
        "fc3": nir.Linear(weight=rng.normal(0, 0.7, (k, o))),
        "readout": nir.CubaLI(tau_syn=_full(k, 4e-3), tau_mem=_full(k, 2e-2), r=_full(k, 10), v_leak=_full(k, 0),
                              w_in=_full(k, 1)),
        "output": nir.Output(output_type={"output": np.array([k])})},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "rnn"), ("rnn", "fc3"),
               ("fc3", "readout"), ("readout", "output")])


def conv2d_delay(rng) -> nir.NIRGraph:
    """Conv2d (bias) -> IF -> SumPool2d -> Flatten -> Delay -> Scale -> Threshold -> Linear -> LI readout."""
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.1, 0.5, (3, 2, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.array([0.01, 0.0, -0.01])),
        "if1": nir.IF(r=_full((3, 6, 6), 1000), v_threshold=_full((3, 6, 6), 0.5), v_reset=_full((3, 6, 6), 0)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0, end_dim=-1),
        "delay": nir.Delay(delay=np.linspace(0, 3, 27).round() * DT),
        "scale": nir.Scale(scale=np.linspace(0.5, 1.5, 27)),
        "thr": nir.Threshold(threshold=_full(27, 0.4)),
        "fc": nir.Linear(weight=rng.normal(0, 0.5, (4, 27))),
        "li": nir.LI(tau=_full(4, 1e-2), r=_full(4, 10), v_leak=_full(4, 0)),
        "output": nir.Output(output_type={"output": np.array([4])})},
        edges=[("input", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"), ("flat", "delay"),
               ("delay", "scale"), ("scale", "thr"), ("thr", "fc"), ("fc", "li"), ("li", "output")])


def pool_conv1d(rng) -> nir.NIRGraph:
    """AvgPool2d -> Flatten (dims 1..2) -> Conv1d -> LIF -> Flatten -> Linear -> I (integrator) readout."""
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "rows": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=1, end_dim=2),
        "conv": nir.Conv1d(input_shape=9, weight=rng.normal(0.3, 0.5, (3, 2, 3)), stride=1, padding=1, dilation=1,
                           groups=1, bias=np.zeros(3)),
        "lif": nir.LIF(tau=_full((3, 9), 4e-3), r=_full((3, 9), 6), v_leak=_full((3, 9), 0),
                       v_threshold=_full((3, 9), 0.3), v_reset=_full((3, 9), 0)),
        "flat": nir.Flatten(input_type={"input": np.array([3, 9])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(0, 0.5, (2, 27))),
        "int": nir.I(r=_full(2, 100)),
        "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "pool"), ("pool", "rows"), ("rows", "conv"), ("conv", "lif"), ("lif", "flat"),
               ("flat", "fc"), ("fc", "int"), ("int", "output")])


def netx_chain() -> nir.NIRGraph:
    """Linear -> LIF(8) -> Linear -> LIF(4), continuous parameters only, active under random input at dt = 1 ms:
    a chain that lava-dl netx can hold once quantised with weight exponents 0 and 1 (verify --netx)."""
    rng = np.random.default_rng(3)
    lif = lambda n: nir.LIF(tau=_full(n, 5e-3), r=_full(n, 1.0), v_leak=_full(n, 0), v_threshold=_full(n, 1),  # noqa
                            v_reset=_full(n, 0))
    nodes = {"input": nir.Input({"input": np.array([12])}), "fc1": nir.Linear(weight=rng.normal(0.3, 0.5, (8, 12))),
             "lif1": lif(8), "fc2": nir.Linear(weight=rng.normal(2.0, 0.5, (4, 8))), "lif2": lif(4),
             "output": nir.Output({"output": np.array([4])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata={"dt": DT})


GRAPHS = {"dense_recurrent": dense_recurrent, "conv2d_delay": conv2d_delay, "pool_conv1d": pool_conv1d}


def nirtorch_graph() -> tuple[nir.NIRGraph, float]:
    """(graph, dt): nirtorch's torch_to_nir on Conv2d -> user LIF module -> Flatten -> Linear -> user LIF."""
    import nirtorch
    import torch

    class Leaky(torch.nn.Module):      # a user's LIF layer, mapped by type as nirtorch asks
        def __init__(self, shape, beta):
            super().__init__()
            self.shape, self.beta = shape, beta

        def forward(self, x):
            return (x > 1).float()

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), Leaky((4, 6, 6), 0.9),
                                torch.nn.Flatten(), torch.nn.Linear(144, 5, bias=False), Leaky((5,), 0.8))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[3].weight.mul_(6.0)
    dt = 1e-4

    def lif(m):
        tau = dt / (1 - m.beta)
        return nir.LIF(tau=_full(m.shape, tau), r=_full(m.shape, tau / dt), v_leak=_full(m.shape, 0),
                       v_threshold=_full(m.shape, 1), v_reset=_full(m.shape, 0))

    maps = {Leaky: lif,
            torch.nn.Conv2d: lambda m: nir.Conv2d(input_shape=(6, 6), weight=m.weight.detach().numpy(),
                                                  stride=m.stride, padding=m.padding, dilation=m.dilation,
                                                  groups=m.groups, bias=m.bias.detach().numpy()),
            torch.nn.Flatten: lambda m: nir.Flatten(input_type={"input": np.array([4, 6, 6])}, start_dim=0,
                                                    end_dim=-1),
            torch.nn.Linear: lambda m: nir.Linear(weight=m.weight.detach().numpy())}
    return nirtorch.torch_to_nir(model, maps), dt


def delayed_audio(rng, channels: int = 700, hidden: int = 24, classes: int = 20, dt: float = 25e-3) -> nir.NIRGraph:
    """Input(channels) -> Delay (one per input channel) -> Linear -> CubaLIF -> Delay -> Linear -> CubaLIF: a
    feed-forward network with learnt axonal delays as a delay-learning framework writes it (snnTorch's or SLAYER's
    per-neuron delays, DCLS's rounded to one per input), in seconds of its time step ``dt``."""
    cuba = lambda n: nir.CubaLIF(tau_syn=_full(n, 2 * dt), tau_mem=_full(n, 4 * dt), r=_full(n, 1),  # noqa: E731
                                 v_leak=_full(n, 0), v_threshold=_full(n, 1), v_reset=_full(n, 0), w_in=_full(n, 1))
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([channels])}),
        "delay1": nir.Delay(delay=rng.integers(0, 12, channels) * dt),
        "fc1": nir.Linear(weight=rng.normal(0.15, 0.5, (hidden, channels))),
        "lif1": cuba(hidden),
        "delay2": nir.Delay(delay=rng.integers(0, 12, hidden) * dt),
        "fc2": nir.Linear(weight=rng.normal(0.2, 0.6, (classes, hidden))),
        "lif2": cuba(classes),
        "output": nir.Output(output_type={"output": np.array([classes])})},
        edges=[("input", "delay1"), ("delay1", "fc1"), ("fc1", "lif1"), ("lif1", "delay2"), ("delay2", "fc2"),
               ("fc2", "lif2"), ("lif2", "output")], metadata={"dt": dt})
