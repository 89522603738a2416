"""``python -m pipeline check GRAPH.nir``: would this graph fit Loihi 2, and on how many cores?"""
from __future__ import annotations

import json
from pathlib import Path

from hardware.chip import loihi2
from hardware.errors import GraphError
from hardware.graph import nir_checks, nir_contract, read
from pipeline.jobs import CheckJob


def check(graph: Path, job: CheckJob = CheckJob(), as_json: bool = False) -> int:
    """Print the violations (exit 1) or the resource estimate (exit 0) of ``graph``, read as ``job.graph`` says."""
    g = nir_checks.read(graph)
    nir_checks.validate(g)
    errors = nir_contract.contract_errors(g)
    if errors:
        raise GraphError(f"{graph}: {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
                         + "; the file's continuous fields and integer metadata must describe one network")
    how = job.graph
    net = read.load(g, dt=how.dt or None, method=how.method or None, source=how.source)
    reading = ("its integer metadata, exactly" if net.exact else
               f"discretised ({net.method}, dt {net.dt:g} s, --source {net.source}) and quantised")
    violations = loihi2.check(net)
    if violations:
        if as_json:
            print(json.dumps({"fits": False, "violations": [v.__dict__ for v in violations]}, indent=2, default=str))
        else:
            print("\n".join(f"violation: {v}" for v in violations))
        return 1
    est = loihi2.estimate(net)
    if as_json:
        print(json.dumps({"fits": True, "read": reading, "violations": [], **est}, indent=2))
        return 0
    print(f"{graph} (read from {reading}): within Loihi 2's limits; {est['cores']} of "
          f"{est['resources']['cores_per_chip']} neuro-cores ({100 * est['chip_utilisation']:.1f}%)")
    for L in est["layers"]:
        stored = (f"{L['synapses']:,} synapses" if L["synapses"] == L["unrolled_synapses"] else
                  f"{L['synapses']:,} kernel synapses (unrolled {L['unrolled_synapses']:,})")
        print(f"  {L['layer']} ({L['kind']}): {L['neurons']:,} neurons, fan-in {L['fan_in']}, {stored} -> "
              f"{L['cores']} cores of up to {L['neurons_per_core']:,} neurons, {L['input_axons']:,} input axons, "
              f"synapse memory {100 * L['synapse_memory_utilisation']:.0f}% used"
              + (f"; delays of up to {L['delay_slots_per_neuron'] - 1} steps: a {L['delay_bits_per_synapse']}-bit "
                 f"delay per synapse, {L['delay_slots_per_neuron']} input slots per neuron"
                 if "delay_slots_per_neuron" in L else ""))
    unrolled = sum(L["unrolled_synapses"] for L in est["layers"])
    if unrolled != sum(L["synapses"] for L in est["layers"]):
        dense = loihi2.estimate_unrolled(net)
        print(f"  (with every convolution unrolled into dense synapses: {dense['cores']} cores)")
    return 0
