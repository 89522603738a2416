"""Shared test helpers. Lava's wheels install a top-level ``tests`` package: never import ours as ``tests.*``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def real_nmnist() -> Path:
    path = SHARED_DATA / "nmnist_digit4.bin"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


DT = 1e-3


def foreign_graph():
    """Input(6) -> Affine -> LIF(5) -> Linear -> CubaLIF(3) -> Output: a small graph as another framework writes
    it (continuous parameters only), active at dt = 1 ms under random input."""
    import nir
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
    import nir
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


def random_net(rng: np.random.Generator, sizes=(72, 40, 30, 5), exps=(1, 0, -2)):
    """A small deployed network with varied integer parameters, including the decay edge cases."""
    from models.neuron import CubaParams
    from models.snn import DeployedNet, IntLayer
    neurons = (CubaParams(1024, 256, 100), CubaParams(4095, 0, 50), CubaParams(0, 4095, 20))
    layers = tuple(IntLayer(f"fc{k + 1}", rng.integers(-128, 128, (o, i)).astype(np.int8), e, p)
                   for k, (i, o, e, p) in enumerate(zip(sizes[:-1], sizes[1:], exps, neurons)))
    return DeployedNet((2, 6, 6), layers)


@pytest.fixture(scope="session")
def quick_cache(tmp_path_factory) -> Path:
    """One data cache for the quick runs of a test session: the simulated digits are the same every time, and
    simulating them takes seconds. Tests that damage a cache use their own."""
    return tmp_path_factory.mktemp("quick-cache")
