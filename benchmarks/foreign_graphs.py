"""Foreign NIR graphs side by side: hand-built graphs covering every node type `verify` supports, and a graph
exported by nirtorch 2.6 from a torch model, each verified three ways (float graph, integer reference, Lava).

Prints per graph and layer the float-vs-integer agreement and whether Lava equals the reference; writes JSON.
The graph builders are also the fixtures of tests/test_verify.py.

    .venv/bin/python benchmarks/foreign_graphs.py [--samples 4 --steps 25 --out benchmarks/results/foreign_graphs]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nir
import numpy as np

DT = 1e-3


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


def main() -> None:
    from pipeline.verify import verify
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/foreign_graphs"))
    args = ap.parse_args()
    graphs = {name: (make(np.random.default_rng(0)), DT, "nir") for name, make in GRAPHS.items()}
    graphs["nirtorch"] = (*nirtorch_graph(), "snntorch")
    rows, lines = [], [f"{'graph':16s} {'layer':10s} {'type':9s} {'float':>6s} {'integer':>7s} {'cosine*':>7s} "
                       f"{'first divergence':26s} {'Lava == reference':>17s}"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (graph, dt, source) in graphs.items():
            path = Path(tmp) / f"{name}.nir"
            nir.write(path, graph)
            r = verify(path, Path(tmp) / name, dt=dt, source=source, samples=args.samples, steps=args.steps,
                       rate=args.rate, progress=False)
            lava = r["backends"]["lava"]
            for f in r["float"]:
                rows.append({"graph": name, **f, "lava_identical": lava["identical"], "compared": lava["compared"]})
                cos = f.get("voltage_cosine", f["activity_cosine"])      # readouts: cosine of the voltages
                first = f["first_divergence"] if "voltage_cosine" not in f else \
                    f"voltage max error {f['voltage_max_abs_error']:.3g}"
                lines.append(f"{name:16s} {f['layer']:10s} {f['type']:9s} {f['float_spikes']:6d} "
                             f"{f['integer_spikes']:7d} {cos:7.4f} {first:26s} "
                             f"{lava['identical']:>9d}/{lava['compared']}")
    lines.append("* cosine of per-neuron spike counts; for the non-spiking readouts (LI, I, CubaLI), of the voltages")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"setup": vars(args) | {"out": str(args.out)},
                                                         "rows": rows}, indent=2))
    args.out.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
