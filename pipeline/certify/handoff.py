"""What ``verify`` hands off besides the vectors and the certificate: the network it verified, as quantised,
written as ``model.nir`` with our integer contract (and as netx ``model.net`` where netx can hold it), each read
back from the file, so that the backends and the certificate are about the files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir

from export import netx_export, nir_export
from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph import nir_checks, read
from hardware.graph.ir import Network

# netx stores a dense layer's weights as integers and derives the exponent itself, scaling only up (lava's
# optimize_weight_bits): q << e must stay within [-256, 254], so e is 0 or 1 (export/netx_export.py).
NETX_LIMITS = Limits(weight_exp_min=0, weight_exp_max=1)


@dataclass(frozen=True)
class HandOff:
    """The graph as written (read back exactly), or None with a note saying why it was not written."""
    graph: nir.NIRGraph | None
    net: Network | None
    notes: tuple[str, ...]


def write_graphs(net: Network, n_steps: int, source: Path, folder: Path) -> HandOff:
    """model.nir (the network as quantised, with our integer contract) and model.net (where netx can hold it), each
    read back from the file; a refusal is kept as a note naming the layer."""
    provenance = {"verified_from": Path(str(source)).name,
                  "read_as": "exact (integer metadata)" if net.exact else
                  f"discretised ({net.method}, dt {net.dt:g} s, --source {net.source}) and quantised"}
    try:
        g, _ = nir_export.from_network(net, n_steps, provenance)
        nir_export.write(g, folder / "model.nir")
        graph = nir_checks.read(folder / "model.nir")
        back = read.load(graph, exact=True)
    except GraphError as e:
        return HandOff(None, None, (f"model.nir not written: {e}",))
    try:
        netx_export.write(back, folder / "model.net")
        notes = ()
    except netx_export.WeightRangeError as e:
        notes = (f"model.net not written: {e}" + ("" if net.exact else
                 " (verify --netx quantises so that netx can store it, at a coarser threshold)"),)
    except GraphError as e:
        notes = (f"model.net not written: {e}",)
    return HandOff(graph, back, notes)
