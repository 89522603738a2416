"""The hand-off a hardware team receives, and can re-check without us: ``certificate.json`` and test vectors.

Every ``run`` and ``verify`` folder holds, beside the deployable files (``model.nir``, ``model.net``,
``model.onnx``):

- ``vectors.h5``: test vectors in NIR's own data format (nir 1.0.8 ``NIRGraphData`` of ``NIRNodeData`` of
  ``TimeGriddedData``, written with ``nir.write_data``): per sample and time step, the input spikes (node
  ``input``) and every layer's expected spikes, keyed by the layer's node name in ``model.nir`` (observable
  ``spikes``, bool (samples, steps, neurons)); a non-spiking readout also has its integer voltage (``v``).
  Anyone with the nir package reads them with ``nir.read_data``, without our code.
- ``certificate.json``: the sha256 of every certified file, the versions of everything that computed it, the
  numeric contract, per backend what was compared and whether it was identical (or the first divergence), per
  layer the spike count and whether it was silent, what was not checked, and the command that re-checks it.

``python -m pipeline recheck DIR`` (``pipeline/recheck.py``) needs the folder alone: it checks every hash, lists version
differences, reads ``model.nir`` exactly, replays the vectors on every backend the certificate names and
compares every layer, step and neuron with the stored spikes.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import nir
import numpy as np

from export.files import atomic_write
from hardware.errors import GraphError
from hardware.ir import CONTRACT, Network

CERTIFICATE = "certificate.json"
VECTORS = "vectors.h5"
FORMAT = "nmpipe-certificate/v1"
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"numpy": "numpy", "nir": "nir", "lava-nc": "lava-nc", "lava-dl": "lava-dl",
            "onnxruntime": "onnxruntime", "torch": "torch", "nmpipe": "nmpipe"}
# The equations every certified backend computes (hardware/ir.py has them in full).
NUMERIC_CONTRACT = {
    "name": CONTRACT,
    "per_step": ["a = sum over incoming projections of shift(W (*) s[t - delay], weight_exp)   (W: int8 mantissas)",
                 "u = trunc(u * (4095 - du) / 4096) + (a << 6)                                  (24-bit, wraps)",
                 "v = trunc(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp)              (24-bit, saturates)",
                 "spike when v > vth << 6, then v = 0"],
    "delay": "one step per synapse (Lava's), plus the steps of any Delay node",
    "input": "binary spikes per step; a sample starts from zero state (v = v0)",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    """Python, the packages that compute or read a certificate, and this project's git commit (when known)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in PACKAGES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    out["nmpipe_commit"] = _git_commit()
    return out


def _git_commit() -> str | None:
    if not (ROOT / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


# --- test vectors -----------------------------------------------------------------------------------------------

def node_names(graph: nir.NIRGraph) -> dict[str, str]:
    """Layer (population) name -> the name of its neuron node in ``graph`` (our graphs name the layer in each
    CubaLIF node's metadata)."""
    out = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.CubaLIF):
            out[str((node.metadata or {}).get("layer", name))] = name
    return out


def write_vectors(path: Path, graph: nir.NIRGraph, net: Network, x: np.ndarray, spikes: dict[str, np.ndarray],
                  voltage: dict[str, np.ndarray]) -> None:
    """Input spikes ``x`` (B, steps, inputs) and each layer's spikes (and a non-spiking readout's voltage)."""
    names = node_names(graph)
    nodes = {"input": nir.NIRNodeData({"spikes": nir.TimeGriddedData(np.asarray(x, bool), net.dt)})}
    for k in net.populations:
        obs = {"spikes": nir.TimeGriddedData(np.asarray(spikes[k], bool), net.dt)}
        if k in voltage:
            obs["v"] = nir.TimeGriddedData(np.asarray(voltage[k], np.int64), net.dt)
        nodes[names[k]] = nir.NIRNodeData(obs)
    atomic_write(path, lambda p: nir.write_data(p, nir.NIRGraphData(nodes)))


def read_vectors(path: Path, graph: nir.NIRGraph, net: Network):
    """(input spikes (B, steps, inputs) int64, {layer: spikes}, {layer: voltage}) from ``path``; a
    :class:`GraphError` names what does not fit ``net``."""
    try:
        data = nir.read_data(str(path))
    except Exception as e:          # h5py/nir raise many types for a damaged file
        raise GraphError(f"{path.name}: not readable as NIR data ({' '.join(str(e).split())})") from None
    names = node_names(graph)

    def grid(node: str, obs: str, size: int) -> np.ndarray:
        try:
            a = np.asarray(data.nodes[node].observables[obs].data)
        except (KeyError, AttributeError):
            raise GraphError(f"{path.name}: no {obs!r} data for node {node!r}") from None
        if a.ndim != 3 or a.shape[2] != size:
            raise GraphError(f"{path.name}: node {node!r} {obs} has shape {a.shape}; expected (samples, steps, "
                             f"{size})")
        return a

    x = grid("input", "spikes", net.input_size).astype(np.int64)
    spikes, volt = {}, {}
    for k, pop in net.populations.items():
        spikes[k] = grid(names[k], "spikes", pop.size).astype(bool)
        if not pop.spiking and "v" in data.nodes[names[k]].observables:
            volt[k] = grid(names[k], "v", pop.size).astype(np.int64)
        if spikes[k].shape[:2] != x.shape[:2]:
            raise GraphError(f"{path.name}: node {names[k]!r} has {spikes[k].shape[:2]} (samples, steps), the "
                             f"input {x.shape[:2]}")
    return x, spikes, volt


# --- the certificate ----------------------------------------------------------------------------------------------

def layer_rows(net: Network, graph: nir.NIRGraph, spikes: dict[str, np.ndarray], samples: int) -> list[dict]:
    """Per layer: its node in model.nir, neurons, spikes over the compared samples, and whether it was silent."""
    names = node_names(graph)
    rows = []
    for k, pop in net.populations.items():
        n = int(np.asarray(spikes[k]).sum())
        rows.append({"layer": k, "node": names.get(k, k), "neurons": pop.size, "spikes": n,
                     "spikes_per_sample": round(n / max(1, samples), 2),
                     "silent": n == 0 if pop.spiking else None,
                     **({} if pop.spiking else {"readout": "voltage (non-spiking)"})})
    return rows


def backend_row(b: dict, against: str) -> dict:
    """One backend's comparison (hardware/equivalence.compare), as the certificate states it."""
    return {"compared": b["compared"], "identical": b["identical"],
            "verdict": "IDENTICAL" if b["identical"] == b["compared"] else "DIVERGED",
            "first_divergence": b["first_divergence"], "against": against}


def certificate(kind: str, folder: Path, out: Path, backends: dict[str, dict], recheck: list[str],
                layers: list[dict], verdict: str, vectors: dict, not_checked: list[str], ranks: int,
                extra: dict | None = None) -> dict:
    """Hash the certified files in ``folder`` (the staged folder, moved to ``out`` when complete)."""
    files = {name: sha256(folder / name) for name in ("model.nir", "model.net", "model.onnx", VECTORS)
             if (folder / name).is_file()}
    return {
        "certificate": FORMAT, "kind": kind, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "verdict": verdict,
        "recheck_command": f"python -m pipeline recheck {out}",
        "files_sha256": files,
        "versions": versions(),
        "numeric_contract": NUMERIC_CONTRACT,
        "backends": backends,
        "recheck_backends": recheck,
        "vectors": vectors,
        "layers": layers,
        "ranks": ranks,
        "not_checked": not_checked,
        **(extra or {}),
    }


def write_certificate(folder: Path, cert: dict) -> None:
    atomic_write(folder / CERTIFICATE, lambda p: p.write_text(json.dumps(cert, indent=2, default=_plain) + "\n"))


def _plain(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
