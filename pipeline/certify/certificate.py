"""``certificate.json``: what was checked, against what, with which versions, and how to re-check it.

Every ``run`` and ``verify`` folder holds, beside the deployable files (``model.nir``, ``model.net``,
``model.onnx``) and the test vectors (``vectors.h5``, ``pipeline/certify/vectors.py``), a certificate rendered
from the verification (``hardware/judge/equivalence.py``): the sha256 of every certified file, the versions of
everything that computed it, the numeric contract, what the expected spikes are, per backend what it was
compared against and whether that comparison certifies anything, per layer its activity, which stored samples
are the vectors, what was not checked, and the command that re-checks it. It never says more than was compared.

A received certificate is read and checked by ``pipeline/certify/received.py``.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from export.files import atomic_write
from hardware.backends import BACKENDS
from hardware.graph.ir import CONTRACT
from hardware.judge.results import VERDICTS, Verification
from pipeline.certify.vectors import VECTORS

CERTIFICATE = "certificate.json"
FORMAT = "nmpipe-certificate/v2"
CERTIFIED_FILES = ("model.nir", "model.net", "model.onnx", VECTORS)
MAX_BYTES = 16 << 20            # a certificate is a few kB; more is not one of ours
MAX_VECTORS = 100_000
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"numpy": "numpy", "nir": "nir", "lava-nc": "lava-nc", "lava-dl": "lava-dl",
            "onnxruntime": "onnxruntime", "torch": "torch", "nmpipe": "nmpipe"}
# The equations every certified backend computes (hardware/graph/ir.py has them in full).
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


@dataclass(frozen=True)
class VectorsInfo:
    samples: int                    # stored
    sample_steps: int               # each sample's own steps
    tail_steps: int                 # stored past each sample's end
    dt_s: float
    indices: tuple[int, ...]        # which compared samples they are
    which: str
    expected: str

    def to_json(self) -> dict:
        return {"file": VECTORS, "samples": self.samples, "steps": self.sample_steps + self.tail_steps,
                "sample_steps": self.sample_steps, "tail_steps": self.tail_steps, "dt_s": self.dt_s,
                "indices": list(self.indices), "which": self.which, "expected": self.expected}

    @classmethod
    def from_json(cls, d: dict) -> "VectorsInfo":
        return cls(d["samples"], d["sample_steps"], d["tail_steps"], d.get("dt_s", 0.0), tuple(d["indices"]),
                   d.get("which", ""), d.get("expected", ""))


_FIELDS = {"certificate", "kind", "written", "verdict", "exit_status", "meaning", "samples_compared",
           "recheck_command", "files_sha256", "versions", "numeric_contract", "expected", "backends",
           "recheck_backends", "vectors", "layers", "readout", "ranks", "not_checked"}


@dataclass(frozen=True)
class Certificate:
    kind: str                                   # run | verify
    verdict: str
    samples: int                                # compared (every backend compares at most these)
    recheck_command: str
    files_sha256: dict[str, str]
    expected_by: str                            # what produced the expected spikes: golden | reference
    expected: str
    backends: dict[str, dict]                   # per backend (and measured model) its comparison
    recheck_backends: tuple[str, ...]
    vectors: VectorsInfo
    layers: tuple[dict, ...]
    readout: tuple[str, ...]
    ranks: int
    not_checked: tuple[str, ...]
    details: dict = field(default_factory=dict)     # run: accuracy, test samples; verify: graph, reading, Loihi 2
    versions: dict[str, str | None] = field(default_factory=versions)
    written: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_json(self) -> dict:
        return {"certificate": FORMAT, "kind": self.kind, "written": self.written, "verdict": self.verdict,
                "exit_status": VERDICTS[self.verdict][0], "meaning": VERDICTS[self.verdict][1],
                "samples_compared": self.samples,
                "recheck_command": self.recheck_command, "files_sha256": dict(self.files_sha256),
                "versions": dict(self.versions), "numeric_contract": NUMERIC_CONTRACT,
                "expected": {"by": self.expected_by, "description": self.expected},
                "backends": self.backends, "recheck_backends": list(self.recheck_backends),
                "vectors": self.vectors.to_json(), "layers": list(self.layers), "readout": list(self.readout),
                "ranks": self.ranks, "not_checked": list(self.not_checked), **self.details}

    @classmethod
    def from_json(cls, d: dict) -> "Certificate":
        """A certificate as read (``pipeline/certify/received.py`` validates the fields first): the inverse of
        :meth:`to_json`; every key it does not know is a detail of its command (accuracy, the graph, ...)."""
        listed = lambda key: tuple(d[key]) if isinstance(d.get(key), list) else d.get(key, ())   # noqa: E731
        return cls(d["kind"], d["verdict"], d["samples_compared"], d.get("recheck_command", ""),
                   dict(d["files_sha256"]), d["expected"]["by"], d["expected"]["description"], d["backends"],
                   tuple(d["recheck_backends"]), VectorsInfo.from_json(d["vectors"]), listed("layers"),
                   listed("readout"), d["ranks"], listed("not_checked"),
                   {k: v for k, v in d.items() if k not in _FIELDS}, d["versions"], d.get("written", "?"))

    def write(self, folder: Path) -> None:
        atomic_write(folder / CERTIFICATE, lambda p: p.write_text(json.dumps(self.to_json(), indent=2) + "\n"))


def layer_rows(verification: Verification, node_names: dict[str, str]) -> tuple[dict, ...]:
    """Per layer: its node in model.nir, neurons, expected spikes over the compared samples, silence."""
    return tuple({"node": node_names.get(L.layer, L.layer), **L.to_json(verification.samples),
                  **({} if L.spiking else {"readout": "voltage (non-spiking)"})} for L in verification.layers)


def certify(kind: str, folder: Path, final: Path, verification: Verification, vectors: VectorsInfo,
            node_names: dict[str, str], not_checked: list[str], details: dict) -> Certificate:
    """The certificate of ``verification``, hashing the certified files in ``folder`` (the staged folder, moved to
    ``final`` when complete); written by the caller after every file it hashes. ``ranks``: the processes that
    shared the verification (torchrun's world)."""
    from pipeline.ranks import rank_world
    ranks = rank_world()[1]
    files = {name: sha256(folder / name) for name in CERTIFIED_FILES if (folder / name).is_file()}
    backends = {b.backend: b.to_json() for b in verification.backends}
    for row in backends.values():
        row.pop("layers")           # per layer and step: report.json; the certificate keeps the verdicts
    recheck = tuple(b.backend for b in verification.backends
                    if b.backend in BACKENDS and (BACKENDS[b.backend].file is None or BACKENDS[b.backend].file in files))
    if verification.expected_by in BACKENDS and verification.expected_by not in recheck:
        recheck = (verification.expected_by,) + recheck      # a reproduction of the stored output: the cheapest replay
    return Certificate(kind, verification.verdict, verification.samples, f"python -m pipeline recheck {final}", files,
                       verification.expected_by, verification.expected, backends, recheck, vectors,
                       layer_rows(verification, node_names), verification.readout, ranks,
                       tuple(not_checked) + verification.not_compared, details)
