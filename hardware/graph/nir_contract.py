"""A graph with our integer contract (``export/nir_export.py``) says everything twice: in NIR's continuous fields,
for other readers, and exactly in metadata, for hardware. ``contract_errors`` checks that the two agree."""
from __future__ import annotations

import math

import nir
import numpy as np

from hardware.errors import GraphError

INT_KEYS = {nir.Linear: ("weight_exp",), nir.Affine: ("weight_exp",),
            nir.CubaLIF: ("du", "dv", "vth", "bias_mant", "bias_exp", "v0")}
PER_NEURON = ("bias_mant", "bias_exp", "v0")        # one number, or one per neuron


def _meta_int(name: str, node, key: str) -> int:
    """Integer metadata: one whole number (per-neuron keys such as the bias may hold an array of them; the first
    is returned)."""
    v = (node.metadata or {})[key]
    try:
        f = np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        f = np.array([math.nan])
    if f.size == 0 or (f.size > 1 and key not in PER_NEURON) or not np.all(np.isfinite(f)) \
            or np.any(f != np.round(f)):
        raise GraphError(f"node {name!r}: integer metadata {key} = {v!r} is not a whole number")
    return int(f[0])


def _per_neuron(v) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.clip(np.asarray(v, dtype=np.float64), -1e300, 1e300)


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):
        near = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= 1e-9 * np.maximum(np.abs(b), 1e-300))
        return bool(np.all(both_inf | near))


def contract_errors(graph: nir.NIRGraph) -> list[str]:
    """Where a graph with our integer metadata (``export/nir_export.py``) says one thing in its continuous fields
    and another in its metadata, one line each. The continuous fields are the exponential discretisation at the
    graph's dt (the inverse of the exporter's equations):

        Linear:  weight = weight_mantissa * 2**weight_exp                            (exactly)
        CubaLIF: du = round(4095 - 4096 exp(-dt / tau_syn)),  dv = round(4096 - 4096 exp(-dt / tau_mem))
                 v_threshold = vth * 64,  v_reset = 0,  r = 1 / (1 - b),  w_in = 64 / (1 - a),
                 v_leak = (bias_mant << bias_exp) r  (0 without a leak: then no continuous field holds the bias)
                 with a = (4095 - du) / 4096 and b = (4096 - dv) / 4096

    Non-finite or fractional metadata raises :class:`GraphError`."""
    dt = float((graph.metadata or {}).get("dt", math.nan))
    errors = []
    for name, node in sorted(graph.nodes.items()):
        md = node.metadata or {}
        ints = {k: _meta_int(name, node, k) for k in INT_KEYS.get(type(node), ()) if k in md}
        if isinstance(node, (nir.Linear, nir.Affine)) and "weight_mantissa" in md:
            if "weight_exp" not in ints:
                raise GraphError(f"node {name!r}: integer metadata has weight_mantissa but no weight_exp")
            q = np.asarray(md["weight_mantissa"])
            if q.dtype.kind not in "iu" and not (np.all(np.isfinite(q.astype(np.float64)))
                                                and np.all(q == np.round(q))):
                raise GraphError(f"node {name!r}: weight_mantissa holds values that are not whole numbers")
            w = np.asarray(node.weight, dtype=np.float64)
            with np.errstate(over="ignore"):
                expected = np.ldexp(q.astype(np.float64), int(np.clip(ints["weight_exp"], -2000, 2000)))
            if q.shape != w.shape or not np.array_equal(expected, w):
                errors.append(f"node {name!r}: weight differs from weight_mantissa * 2**weight_exp")
        if isinstance(node, nir.CubaLIF) and {"du", "dv", "vth"} <= set(ints):
            if not math.isfinite(dt):
                raise GraphError("graph metadata: no dt, so the continuous fields cannot be checked")
            du, dv, vth = ints["du"], ints["dv"], ints["vth"]
            a, b = np.float64(4095 - du) / 4096, np.float64(4096 - dv) / 4096
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                tau_syn = np.asarray(node.tau_syn, dtype=np.float64)
                keep_syn = np.where(tau_syn > 0, np.exp(-dt / np.where(tau_syn > 0, tau_syn, 1.0)), 0.0)
                keep_mem = np.exp(-dt / np.asarray(node.tau_mem, dtype=np.float64))
                r, w_in = (1 / (1 - b) if b < 1 else np.inf), 64 / (1 - a)
            checks = [("tau_syn", np.all(np.rint(4095 - 4096 * keep_syn) == du), f"du = {du}"),
                      ("tau_mem", np.all(np.rint(4096 - 4096 * keep_mem) == dv), f"dv = {dv}"),
                      ("v_threshold", _close(node.v_threshold, vth * 64), f"vth = {vth} (v_threshold = vth * 64)"),
                      ("v_reset", _close(node.v_reset, 0.0), "the reset rule (to 0)"),
                      ("r", _close(node.r, r), f"dv = {dv} (r = 1 / (1 - b))"),
                      ("w_in", _close(node.w_in, w_in), f"du = {du} (w_in = 64 / (1 - a))")]
            if {"bias_mant", "bias_exp"} <= set(ints):
                with np.errstate(over="ignore"):
                    bias = np.ldexp(_per_neuron(md["bias_mant"]),
                                    np.clip(_per_neuron(md["bias_exp"]), -2000, 2000).astype(np.int64))
                want = np.ravel(bias * r if np.isfinite(r) else 0.0 * bias)
                have = np.ravel(np.asarray(node.v_leak, dtype=np.float64))
                same = want.size in (1, have.size) and _close(have, np.broadcast_to(want, have.shape))
                checks.append(("v_leak", same, "bias_mant << bias_exp (v_leak = bias r)"))
            errors += [f"node {name!r}: {field} disagrees with the metadata's {what}" for field, ok, what in checks
                       if not ok]
    return errors
