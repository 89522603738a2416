"""Foreign NIR graphs side by side: hand-built graphs covering every node type `verify` supports, and a graph
exported by nirtorch 2.6 from a torch model, each verified three ways (float graph, integer reference, Lava).

Prints per graph and layer the float-vs-integer agreement and whether Lava equals the reference; writes JSON.
The graph builders live in tests/graphs.py (test fixtures first).

    .venv/bin/python benchmarks/foreign_graphs.py [--samples 4 --steps 25 --out benchmarks/results/foreign_graphs]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from graphs import DT, GRAPHS, nirtorch_graph  # noqa: E402
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)


def main() -> None:
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
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
            r = verify(path, Path(tmp) / name, verify_job(dt=dt, source=source, samples=args.samples, steps=args.steps, rate=args.rate), progress=False).to_json()
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
    harness.write_json(args.out.with_suffix(".json"), {"setup": vars(args) | {"out": str(args.out)},
                                                         "rows": rows}, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
