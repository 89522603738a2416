"""What ``verify`` hands off: the network it verified as quantised, written as ``model.nir`` with our integer
contract (and as netx ``model.net`` where netx can hold it), the test vectors and the certificate
(``pipeline/handoff.py``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np

from export import netx_export, nir_export
from hardware import nir_checks, read
from hardware.backends.reference import Trace
from hardware.errors import GraphError
from hardware.ir import Network
from hardware.loihi2 import Limits
from pipeline import handoff

# netx stores a dense layer's weights as integers and derives the exponent itself, scaling only up (lava's
# optimize_weight_bits): q << e must stay within [-256, 254], so e is 0 or 1 (export/netx_export.py).
NETX_LIMITS = Limits(weight_exp_min=0, weight_exp_max=1)


@dataclass
class HandOff:
    """What verify wrote for the hand-off: the graph as quantised (read back exactly) and notes on what was not."""
    graph: nir.NIRGraph | None = None
    net: Network | None = None
    notes: list[str] = field(default_factory=list)
    x: np.ndarray | None = None             # the input spikes verified, and the integer reference's response
    expected: Trace | None = None


def write_graphs(net: Network, x: np.ndarray, graph, folder: Path) -> HandOff:
    """model.nir (the network as quantised, with our integer contract) and model.net (where netx can hold it), each
    read back from the file; a refusal is kept as a note naming the layer."""
    hand = HandOff(x=x)
    provenance = {"verified_from": Path(str(graph)).name,
                  "read_as": "exact (integer metadata)" if net.exact else
                  f"discretised ({net.method}, dt {net.dt:g} s, --source {net.source}) and quantised"}
    try:
        g, _ = nir_export.from_network(net, x.shape[1], provenance)
        nir_export.write(g, folder / "model.nir")
        hand.graph = nir_checks.read(folder / "model.nir")
        hand.net = read.load(hand.graph, exact=True)
    except GraphError as e:
        hand.notes.append(f"model.nir not written: {e}")
        return hand
    try:
        netx_export.write(hand.net, folder / "model.net")
    except netx_export.WeightRangeError as e:
        hand.notes.append(f"model.net not written: {e}" + ("" if net.exact else
                          " (verify --netx quantises so that netx can store it, at a coarser threshold)"))
    except GraphError as e:
        hand.notes.append(f"model.net not written: {e}")
    return hand


def certify(folder: Path, out: Path, report: dict, net: Network, hand: HandOff, vectors: int) -> None:
    """vectors.h5 (input and the integer reference's spikes, which every certified backend reproduced) and
    certificate.json."""
    x, ref = hand.x, hand.expected
    n = len(x)
    v = min(vectors, n)
    recheck, not_checked = [], list(hand.notes)
    if hand.graph is not None:
        handoff.write_vectors(folder / handoff.VECTORS, hand.graph, hand.net, x[:v],
                              {k: s[:v] for k, s in ref.spikes.items()}, {k: a[:v] for k, a in ref.voltage.items()})
        recheck = ["reference"] + [b for b in ("lava", "netx") if b in report["backends"]]
        not_checked.append(f"vectors: {v} of the {n} samples are stored in {handoff.VECTORS}; recheck replays those")
    else:
        not_checked.append("no model.nir, so no test vectors: this folder cannot be re-checked")
    if report["target"] != "lava":
        not_checked.append("lava and netx: not run (--target reference)")
    not_checked += ["model.onnx: not written by verify (run writes it for its own graphs)",
                    f"input: {report['input']}",
                    "the float graph as written vs the integer reference: measured per layer (report.json float), "
                    "not certified: quantisation changes spikes",
                    "no Loihi 2 chip was run: Lava's bit-accurate CPU simulation (Loihi2SimCfg fixed_pt) stands in"]
    against = "integer reference: the graph as quantised (model.nir), on the same input spikes"
    rows = {b: handoff.backend_row(r, against) for b, r in report["backends"].items() if b != "reference"}
    if "reference" in report["backends"]:
        r = report["backends"]["reference"]
        rows["float_graph"] = {"compared": r["compared"], "identical": r["identical"],
                               "against": "integer reference; measured, not certified (quantisation)"}
    graph = hand.graph or nir.NIRGraph(nodes={}, edges=[])
    cert = handoff.certificate(
        "verify", folder, out, rows, recheck, handoff.layer_rows(net, graph, ref.spikes, n), report["verdict"],
        {"file": handoff.VECTORS, "samples": v, "steps": int(x.shape[1]), "dt_s": net.dt,
         "which": f"the first {v} of the {n} verified samples", "expected": "the integer reference's spikes"}
        if hand.graph is not None else {}, not_checked, report["ranks"],
        {"graph": report["graph"], "read": report["read"], "discretisation": report["discretisation"],
         "silent_layers": [s["layer"] for s in report["silent_layers"]]})
    handoff.write_certificate(folder, cert)


