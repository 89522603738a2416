"""Loihi 2 cores of convolutional networks, side by side in one run: each convolution as the chip stores it (one
shared kernel per core, ``hardware/chip/loihi2.py``) against the same network with every convolution unrolled into a
dense matrix (what counting unrolled synapses gives, as ``verify`` did before convolutions were kept).

Two networks, read as ``pipeline check`` reads them:
- the NIR paper's N-MNIST CNN (the layer shapes published with the NIR paper's Sinabs export, run there on
  Loihi 2): 2x34x34 -> Conv 5x5/2 (16) -> IF -> Conv 3x3 (16) -> IF -> SumPool 2 -> Conv 3x3 (8) -> IF -> SumPool 2
  -> Flatten -> Linear 256 -> IF -> Linear 10 -> IF, with random weights (the estimate depends on shapes only);
- this tool's default conv model (random weights of the trained shapes), read exactly from its metadata.

    .venv/bin/python benchmarks/conv_resources.py [--out benchmarks/results/conv_resources]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nir
import numpy as np

from export.nir_export import to_nir
from hardware.chip import loihi2
from hardware.graph import read
from pipeline.architecture import build_model
from pipeline.config import RunConfig
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)


def nir_paper_cnn() -> nir.NIRGraph:
    rng = np.random.default_rng(0)

    def IF(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))

    def conv(cin, cout, k, stride, pad, hw):
        return nir.Conv2d(input_shape=hw, weight=rng.normal(0, 0.3, (cout, cin, k, k)), stride=stride,
                          padding=pad, dilation=1, groups=1, bias=np.zeros(cout))

    def pool():
        return nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes = {
        "input": nir.Input({"input": np.array([2, 34, 34])}),
        "conv1": conv(2, 16, 5, 2, 1, (34, 34)), "if1": IF((16, 16, 16)),
        "conv2": conv(16, 16, 3, 1, 1, (16, 16)), "if2": IF((16, 16, 16)), "pool2": pool(),
        "conv3": conv(16, 8, 3, 1, 1, (8, 8)), "if3": IF((8, 8, 8)), "pool3": pool(),
        "flat": nir.Flatten(input_type={"input": np.array([8, 4, 4])}, start_dim=0, end_dim=-1),
        "fc1": nir.Linear(weight=rng.normal(0, 0.3, (256, 128))), "if4": IF((256,)),
        "fc2": nir.Linear(weight=rng.normal(0, 0.3, (10, 256))), "if5": IF((10,)),
        "output": nir.Output({"output": np.array([10])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata={"dt": 1e-3})


def default_model() -> nir.NIRGraph:
    cfg = RunConfig()
    model = build_model(cfg, (2, 34, 34), 10)
    return to_nir(model.deployed(), 0.31 / cfg.data.n_bins, cfg.data.n_bins)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/conv_resources"))
    args = ap.parse_args()
    rows, lines = {}, []
    for name, graph in (("NIR paper N-MNIST CNN", nir_paper_cnn()), ("default conv model", default_model())):
        net = read.load(graph)
        assert not loihi2.check(net), loihi2.check(net)
        est, unrolled = loihi2.estimate(net), loihi2.estimate_unrolled(net)
        rows[name] = {"cores": est["cores"], "unrolled_cores": unrolled["cores"], "layers": est["layers"]}
        lines.append(f"{name}: {est['cores']} cores with shared kernels, {unrolled['cores']} unrolled "
                     f"({unrolled['cores'] / est['cores']:.1f}x)")
        for L in est["layers"]:
            lines.append(f"  {L['layer']:8s} {L['kind']:22s} {L['neurons']:7,d} neurons  {L['synapses']:9,d} synapses "
                         f"(unrolled {L['unrolled_synapses']:10,d})  {L['cores']:3d} cores")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out.with_suffix(".json"), rows, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
