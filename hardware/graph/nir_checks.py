"""Reading a NIR file, and what every graph must satisfy before anything is computed from it.

``read`` names the node whose type NIR does not know (``nir.read`` stops on a bare ``AssertionError`` there) and
turns any other failure of the file into one line. ``validate`` checks every node's fields by type: finite
weights, thresholds, biases and leaks; time constants > 0 (``inf`` is the no-leak limit; ``tau_syn = 0`` is a
current cleared every step, as our exporter writes for du = 4095); ``r = inf`` only with an infinite time
constant; shapes that the node type can have. ``hardware/graph/nir_contract.py`` checks that a graph carrying our
integer contract says the same thing in its continuous fields as in its metadata.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import h5py
import nir
import numpy as np

from hardware import h5safe
from hardware.errors import GraphError

KNOWN = {c.__name__ for c in (nir.NIRGraph, nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d,
                              nir.Flatten, nir.SumPool2d, nir.AvgPool2d, nir.Scale, nir.Delay, nir.Threshold,
                              nir.IF, nir.LIF, nir.CubaLIF, nir.LI, nir.I, nir.CubaLI)}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _types(group: h5py.Group, prefix: str = "") -> list[tuple[str, str]]:
    """(node name, type) of every node in a NIR file's HDF5 tree, subgraphs included."""
    out = []
    for name, node in group.get("nodes", {}).items():
        if not isinstance(node, h5py.Group) or "type" not in node:
            out.append((prefix + name, "?"))
            continue
        t = node["type"][()]
        t = t.decode(errors="replace") if isinstance(t, bytes) else str(t)
        out.append((prefix + name, t))
        if t == "NIRGraph":
            out += _types(node, f"{prefix}{name}.")
    return out


def read(path: str | Path) -> nir.NIRGraph:
    """The graph in ``path``, or a :class:`GraphError` naming the file (and the node, for an unknown type)."""
    path = Path(path)
    if path.is_dir():
        raise GraphError(f"{path}: is a folder, not a NIR file (give the .nir file, e.g. {path / 'model.nir'})")
    h5safe.check(path, what="NIR file")     # a plain file, no links or external data, sizes within bounds
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise GraphError(f"{path}: an HDF5 file without NIR's 'node' group; not a NIR graph")
            for name, t in _types(f["node"]):
                if t not in KNOWN:
                    raise GraphError(f"{path}: node {name!r} has type {t!r}, which NIR does not define "
                                     f"(known: {', '.join(sorted(KNOWN))})")
        return nir.read(str(path))
    except GraphError:
        raise
    except Exception as e:      # h5py and nir's parser raise anything from OSError to AssertionError on bad files
        raise GraphError(f"{path}: not a readable NIR file ({type(e).__name__}: {_one_line(e)})") from None


# --- field rules ------------------------------------------------------------------------------------------------

Rule = Callable[[np.ndarray, object], "str | None"]


def _numeric(v) -> np.ndarray:
    if np.iscomplexobj(v):
        raise ValueError("holds complex values (a NIR field is real)")
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"is not numeric ({type(v).__name__})") from None
    return a


def _bad(a: np.ndarray, mask: np.ndarray, what: str) -> str | None:
    if not mask.any():
        return None
    return f"has {int(mask.sum())} {what} value{'s' if mask.sum() > 1 else ''} (e.g. {a[mask].flat[0]:g})"


def finite(a, node) -> str | None:
    return _bad(a, ~np.isfinite(a), "non-finite")


def time_constant(a, node) -> str | None:
    return _bad(a, np.isnan(a), "NaN") or _bad(a, a <= 0, "non-positive (a time constant must be > 0; inf: no leak)")


def synaptic_time_constant(a, node) -> str | None:
    return _bad(a, np.isnan(a), "NaN") or _bad(a, a < 0, "negative (a time constant must be >= 0)")


def resistance(tau_field: str | None) -> Rule:
    """r: finite, or infinite together with an infinite time constant (the no-leak limit our exporter writes)."""
    def rule(a, node) -> str | None:
        inf = np.isinf(a)
        if tau_field is not None and inf.any():
            tau = np.asarray(getattr(node, tau_field), dtype=np.float64)
            if np.broadcast_shapes(tau.shape, a.shape) == a.shape:
                inf &= ~np.isinf(np.broadcast_to(tau, a.shape))
        return _bad(a, np.isnan(a), "NaN") or _bad(a, inf, "infinite (r = inf needs an infinite time constant)") \
            or _bad(a, a < 0, "negative (a resistance is >= 0)")
    return rule


def non_negative(a, node) -> str | None:
    return finite(a, node) or _bad(a, a < 0, "negative")


SIZE_MAX = 2**16      # a kernel, stride, dilation, padding or group count beyond this is a damaged field


def positive_int(a, node) -> str | None:
    return finite(a, node) or _bad(a, (a < 1) | (a != np.round(a)), "non-positive or fractional") \
        or _bad(a, a > SIZE_MAX, f"implausibly large (> {SIZE_MAX})")


def int_value(a, node) -> str | None:
    return finite(a, node) or _bad(a, a != np.round(a), "fractional")


def padding(v, node) -> str | None:
    if isinstance(v, (str, bytes)):
        v = v.decode() if isinstance(v, bytes) else v
        return None if v in ("same", "valid") else f"is {v!r} (expected 'same', 'valid' or whole numbers >= 0)"
    a = _numeric(v)
    return finite(a, node) or _bad(a, (a < 0) | (a != np.round(a)), "negative or fractional") \
        or _bad(a, a > SIZE_MAX, f"implausibly large (> {SIZE_MAX})")


ONE_VALUE = ("groups", "start_dim", "end_dim")
PER_SPATIAL_DIM = ("stride", "dilation", "kernel_size", "padding")


def _size_rule(node, field: str, a: np.ndarray) -> str | None:
    if a.size == 0:
        return "is empty"
    if field in ONE_VALUE and a.size != 1:
        return f"holds {a.size} values; expected one"
    dims = 1 if isinstance(node, nir.Conv1d) else 2
    if field in PER_SPATIAL_DIM and a.size not in (1, dims):
        return f"holds {a.size} values; expected 1 or {dims} (one per spatial dimension)"
    return None


NEURON = {"tau": time_constant, "tau_mem": time_constant, "tau_syn": synaptic_time_constant, "v_leak": finite,
          "v_threshold": finite, "v_reset": finite, "w_in": finite, "threshold": finite}
RULES: dict[type, dict[str, Rule]] = {
    nir.Affine: {"weight": finite, "bias": finite},
    nir.Linear: {"weight": finite},
    nir.Conv1d: {"weight": finite, "bias": finite, "stride": positive_int, "dilation": positive_int,
                 "groups": positive_int, "padding": padding},
    nir.Conv2d: {"weight": finite, "bias": finite, "stride": positive_int, "dilation": positive_int,
                 "groups": positive_int, "padding": padding},
    nir.SumPool2d: {"kernel_size": positive_int, "stride": positive_int, "padding": padding},
    nir.AvgPool2d: {"kernel_size": positive_int, "stride": positive_int, "padding": padding},
    nir.Scale: {"scale": finite},
    nir.Flatten: {"start_dim": int_value, "end_dim": int_value},
    nir.Delay: {"delay": non_negative},
    nir.Threshold: {"threshold": finite},
    nir.IF: {"r": resistance(None), "v_threshold": finite, "v_reset": finite},
    nir.LIF: {**{k: NEURON[k] for k in ("tau", "v_leak", "v_threshold", "v_reset")}, "r": resistance("tau")},
    nir.CubaLIF: {**{k: NEURON[k] for k in ("tau_syn", "tau_mem", "v_leak", "v_threshold", "v_reset", "w_in")},
                  "r": resistance("tau_mem")},
    nir.LI: {**{k: NEURON[k] for k in ("tau", "v_leak")}, "r": resistance("tau")},
    nir.I: {"r": resistance(None)},
    nir.CubaLI: {**{k: NEURON[k] for k in ("tau_syn", "tau_mem", "v_leak", "w_in")}, "r": resistance("tau_mem")},
}
# array rank each field must have (None: any); per-neuron fields must broadcast to one shape
RANKS = {nir.Affine: {"weight": 2, "bias": 1}, nir.Linear: {"weight": 2}, nir.Conv1d: {"weight": 3},
         nir.Conv2d: {"weight": 4}}
SHAPE_FIELDS = ("tau_mem", "tau", "r", "threshold", "v_threshold", "tau_syn", "v_leak", "v_reset", "w_in")


def _check_node(name: str, node) -> None:
    kind = type(node).__name__
    if isinstance(node, (nir.Input, nir.Output)):
        key = "input_type" if isinstance(node, nir.Input) else "output_type"
        for k, v in (getattr(node, key) or {}).items():
            a = _numeric(v)
            if a.ndim != 1 or a.size == 0 or (msg := positive_int(a, node)):
                raise GraphError(f"node {name!r} ({kind}): {key}[{k!r}] = {np.asarray(v).tolist()} is not a shape "
                                 f"of whole numbers >= 1 {msg or ''}".rstrip())
        return
    for field, rule in RULES.get(type(node), {}).items():
        v = getattr(node, field, None)
        if v is None:
            continue
        try:
            a = v if rule is padding else _numeric(v)
            msg = rule(a, node)
        except ValueError as e:
            msg = str(e)
        if not msg and not isinstance(a, (str, bytes)):
            msg = _size_rule(node, field, np.asarray(a))
        if msg:
            raise GraphError(f"node {name!r} ({kind}): {field} {msg}")
        rank = RANKS.get(type(node), {}).get(field)
        if rank is not None and not (a.ndim == rank or (field == "bias" and a.ndim == 0)):
            raise GraphError(f"node {name!r} ({kind}): {field} has shape {a.shape}; expected {rank} dimensions")
    if isinstance(node, (nir.Affine, nir.Conv1d, nir.Conv2d)) and getattr(node, "bias", None) is not None \
            and np.asarray(node.bias).size not in (1, np.asarray(node.weight).shape[0]):
        raise GraphError(f"node {name!r} ({kind}): bias has {np.asarray(node.bias).size} values for "
                         f"{np.asarray(node.weight).shape[0]} output {'channels' if 'Conv' in kind else 'neurons'}")
    shapes = {f: np.shape(getattr(node, f)) for f in SHAPE_FIELDS if getattr(node, f, None) is not None}
    if shapes:
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            raise GraphError(f"node {name!r} ({kind}): per-neuron fields disagree in shape "
                             f"({', '.join(f'{k} {s}' for k, s in shapes.items())})") from None
        if math.prod(next(iter(shapes.values()))) == 0:
            raise GraphError(f"node {name!r} ({kind}): has no neurons ({next(iter(shapes))} is empty)")


def validate(graph: nir.NIRGraph, prefix: str = "") -> None:
    """Raise :class:`GraphError` naming the node and field of the first value no backend could run."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            validate(node, f"{prefix}{name}.")
        else:
            _check_node(prefix + name, node)
    md = graph.metadata or {}
    if "dt" in md:
        try:
            dt = float(md["dt"])
        except (TypeError, ValueError):
            dt = math.nan
        if not (math.isfinite(dt) and dt > 0):
            raise GraphError(f"graph metadata: dt = {md['dt']!r} is not a positive number of seconds")
