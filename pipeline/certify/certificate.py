"""``certificate.json``: what was checked, against what, with which versions, and how to re-check it.

Every ``run`` and ``verify`` folder holds, beside the deployable files (``model.nir``, ``model.net``,
``model.onnx``) and the test vectors (``vectors.h5``, ``pipeline/certify/vectors.py``), a certificate rendered
from the verification (``hardware/equivalence.py``): the sha256 of every certified file, the versions of
everything that computed it, the numeric contract, what the expected spikes are, per backend what it was
compared against and whether that comparison certifies anything, per layer its activity, which stored samples
are the vectors, what was not checked, and the command that re-checks it. It never says more than was compared.

A certificate arrives with a folder from someone else: :func:`read` validates every field (types, ranges, plain
file names inside the folder, backends this version has) before anything is run, and names the field it
refuses.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from export.files import atomic_write
from hardware.backends import BACKENDS
from hardware.equivalence import VERDICTS, Verification
from hardware.ir import CONTRACT
from hardware.read import MAX_STEPS
from pipeline.certify.errors import CertificateError
from pipeline.certify.vectors import VECTORS

CERTIFICATE = "certificate.json"
FORMAT = "nmpipe-certificate/v2"
CERTIFIED_FILES = ("model.nir", "model.net", "model.onnx", VECTORS)
MAX_BYTES = 16 << 20            # a certificate is a few kB; more is not one of ours
MAX_VECTORS = 100_000
ROOT = Path(__file__).resolve().parents[2]
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

    def write(self, folder: Path) -> None:
        atomic_write(folder / CERTIFICATE, lambda p: p.write_text(json.dumps(self.to_json(), indent=2) + "\n"))


def layer_rows(verification: Verification, node_names: dict[str, str]) -> tuple[dict, ...]:
    """Per layer: its node in model.nir, neurons, expected spikes over the compared samples, silence."""
    return tuple({"node": node_names.get(L.layer, L.layer), **L.to_json(verification.samples),
                  **({} if L.spiking else {"readout": "voltage (non-spiking)"})} for L in verification.layers)


def certify(kind: str, folder: Path, final: Path, verification: Verification, vectors: VectorsInfo,
            node_names: dict[str, str], not_checked: list[str], ranks: int, details: dict) -> Certificate:
    """The certificate of ``verification``, hashing the certified files in ``folder`` (the staged folder, moved to
    ``final`` when complete); written by the caller after every file it hashes."""
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


# --- reading a received certificate -------------------------------------------------------------------------

def read(folder: Path) -> dict:
    """The certificate in ``folder``, every field the replay relies on validated (see :func:`validate`)."""
    path = folder / CERTIFICATE
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise CertificateError(f"{path}: is not a regular file")
        if size > MAX_BYTES:
            raise CertificateError(f"{path}: {size:,} bytes; a certificate of this tool is a few kB (limit "
                                   f"{MAX_BYTES:,})")
        cert = json.loads(path.read_text())
    except FileNotFoundError:
        raise CertificateError(f"{path}: no certificate in this folder (run and verify write one)") from None
    except RecursionError:
        raise CertificateError(f"{path}: JSON nested too deeply to be a certificate") from None
    except (OSError, ValueError) as e:
        raise CertificateError(f"{path}: not a readable certificate ({' '.join(str(e).split())})") from None
    validate(cert, path)
    return cert


_HEX = re.compile(r"[0-9a-f]{64}")


def _need(cert: dict, key: str, typ, path: Path):
    value = cert.get(key)
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise CertificateError(f"{path}: field {key!r} must be {getattr(typ, '__name__', typ)}, found "
                               f"{type(value).__name__} {json.dumps(value)[:60]}")
    return value


def validate(cert, path: Path) -> None:
    """Refuse a certificate whose fields could make the replay compare less than it claims, read outside the
    folder, or fail midway: one :class:`CertificateError` naming the field."""
    if not isinstance(cert, dict) or cert.get("certificate") != FORMAT:
        found = cert.get("certificate") if isinstance(cert, dict) else None
        older = " (an earlier version, which did not state what each backend was compared against: " \
                "certify again with this version)" if isinstance(found, str) and found.startswith("nmpipe") else ""
        raise CertificateError(f"{path}: not a certificate of this tool (expected \"certificate\": \"{FORMAT}\")"
                               + older)
    if not isinstance(cert.get("kind"), str) or cert["kind"] not in ("run", "verify"):
        raise CertificateError(f"{path}: field 'kind' must be 'run' or 'verify'")
    if not isinstance(cert.get("verdict"), str) or cert["verdict"] not in set(VERDICTS) - {"TAMPERED"}:
        raise CertificateError(f"{path}: field 'verdict' {cert.get('verdict')!r} is not one of "
                               f"{sorted(set(VERDICTS) - {'TAMPERED'})}")
    files = _need(cert, "files_sha256", dict, path)
    for name, digest in files.items():
        if name not in CERTIFIED_FILES:
            raise CertificateError(f"{path}: files_sha256 names {name!r}; only the folder's own "
                                   f"{', '.join(CERTIFIED_FILES)} are certified (no paths)")
        if not isinstance(digest, str) or not _HEX.fullmatch(digest):
            raise CertificateError(f"{path}: files_sha256[{name!r}] is not a sha256 digest (64 hex digits)")
    for name in ("model.nir", VECTORS):
        if name not in files:
            raise CertificateError(f"{path}: certifies no {name}, so there is nothing to replay")
    vers = _need(cert, "versions", dict, path)
    if not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in vers.items()):
        raise CertificateError(f"{path}: field 'versions' must map names to version strings")
    expected = _need(cert, "expected", dict, path)
    if expected.get("by") not in ("golden", "reference") or not isinstance(expected.get("description"), str):
        raise CertificateError(f"{path}: field 'expected' must say by 'golden' or 'reference', with a description")
    backends = _need(cert, "backends", dict, path)
    for name, row in backends.items():
        if not isinstance(row, dict) or not isinstance(row.get("certifies"), bool) \
                or not all(isinstance(row.get(k), int) and row[k] >= 0 for k in ("compared", "identical")):
            raise CertificateError(f"{path}: backends[{name!r}] must state certifies (true/false), compared and "
                                   "identical (whole numbers)")
    recheck = _need(cert, "recheck_backends", list, path)
    if not recheck:
        raise CertificateError(f"{path}: recheck_backends is empty: the certificate names nothing to replay")
    for name in recheck:
        if not isinstance(name, str) or name not in BACKENDS:
            raise CertificateError(f"{path}: recheck_backends names {json.dumps(name)[:60]}; this version replays "
                                   f"{', '.join(BACKENDS)}")
        if BACKENDS[name].file and BACKENDS[name].file not in files:
            raise CertificateError(f"{path}: recheck_backends names {name!r}, which runs from "
                                   f"{BACKENDS[name].file}, but the certificate certifies no such file")
    if len(set(recheck)) != len(recheck):
        raise CertificateError(f"{path}: recheck_backends names a backend twice")
    left_out = [b for b, row in backends.items() if row["certifies"] and b not in recheck]
    if left_out:
        raise CertificateError(f"{path}: backends {left_out} certify, but recheck_backends does not replay them")
    vec = _need(cert, "vectors", dict, path)
    for key, lo in (("samples", 1), ("sample_steps", 1), ("tail_steps", 0)):
        if not isinstance(vec.get(key), int) or isinstance(vec.get(key), bool) or vec[key] < lo:
            raise CertificateError(f"{path}: vectors.{key} must be a whole number >= {lo}")
    if vec["samples"] > MAX_VECTORS or vec["sample_steps"] > MAX_STEPS or vec["tail_steps"] > 64:
        raise CertificateError(f"{path}: vectors declare {vec['samples']} samples of {vec['sample_steps']} + "
                               f"{vec['tail_steps']} steps; the limits are {MAX_VECTORS} samples and "
                               f"{MAX_STEPS} + 64 steps")
    indices = vec.get("indices")
    if not isinstance(indices, list) or len(indices) != vec["samples"] or \
            not all(isinstance(i, int) and i >= 0 for i in indices):
        raise CertificateError(f"{path}: vectors.indices must list the {vec['samples']} stored samples")
    if not isinstance(cert.get("ranks"), int) or cert["ranks"] < 1:
        raise CertificateError(f"{path}: field 'ranks' must be a whole number >= 1")
    n = cert.get("samples_compared")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10_000_000:
        raise CertificateError(f"{path}: field 'samples_compared' must be a whole number 1..10,000,000 (the samples "
                               "the verification compared; certificates written before it was added: run or verify "
                               "again)")


# --- counts that must agree with each other ---------------------------------------------------------------------

def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def inconsistencies(cert: dict) -> list[str]:
    """Every count the certificate states that contradicts another it states (a certificate of this tool never
    does): one line each. Recheck reports them as TAMPERED."""
    out = []
    n, vec = cert["samples_compared"], cert["vectors"]
    certifying = {b: r for b, r in cert["backends"].items() if r["certifies"]}
    for b, r in cert["backends"].items():
        if r["compared"] > n:
            out.append(f"backends.{b}.compared is {r['compared']:,}, more than the {n:,} samples the certificate "
                       "says were compared (samples_compared)")
        if r["identical"] > r["compared"]:
            out.append(f"backends.{b}.identical is {r['identical']:,}, more than its compared {r['compared']:,}")
        if r["certifies"] and r.get("verdict") != ("IDENTICAL" if r["identical"] == r["compared"] else "DIVERGED"):
            out.append(f"backends.{b}.verdict is {r.get('verdict')!r}, but {r['identical']} of {r['compared']} samples "
                       "identical says " + ("IDENTICAL" if r["identical"] == r["compared"] else "DIVERGED"))
        diverged = r.get("diverged_samples", [])
        if not isinstance(diverged, list) or not all(_whole(i) and i < n for i in diverged) \
                or len(diverged) != min(100, r["compared"] - r["identical"]):
            out.append(f"backends.{b}.diverged_samples does not list the {r['compared'] - r['identical']} samples "
                       f"that differ (the first 100, each below {n})")
        for key in ("positions_compared", "tail_positions_compared"):
            if key in r and not _whole(r[key]):
                out.append(f"backends.{b}.{key} is not a whole number")
    rows = {r.get("layer"): r for r in cert.get("layers", []) if isinstance(r, dict)} \
        if isinstance(cert.get("layers"), list) else {}
    readout = cert.get("readout") if isinstance(cert.get("readout"), list) else []
    silent = bool(readout) and all(isinstance(rows.get(k), dict) and rows[k].get("silent") is True for k in readout)
    if any(r["identical"] < r["compared"] for r in certifying.values()):
        implied = "DIVERGED"
    elif silent:
        implied = "SILENT"
    else:
        implied = "IDENTICAL" if certifying else "REFERENCE ONLY"
    if cert["verdict"] != implied:
        out.append(f"verdict is {cert['verdict']}, but the backends' counts give {implied}")
    if vec.get("steps") != vec["sample_steps"] + vec["tail_steps"]:
        out.append(f"vectors.steps is {vec.get('steps')!r}, but sample_steps {vec['sample_steps']} + tail_steps "
                   f"{vec['tail_steps']} is {vec['sample_steps'] + vec['tail_steps']}")
    if vec["samples"] > n:
        out.append(f"vectors.samples is {vec['samples']:,}, more than the {n:,} samples compared")
    if any(i >= n for i in vec["indices"]) or len(set(vec["indices"])) != len(vec["indices"]):
        out.append(f"vectors.indices are not {vec['samples']} distinct samples below {n}")
    for key in ("test_samples", "task_samples"):
        if key in cert and cert[key] != n:
            out.append(f"{key} is {cert[key]!r}, but samples_compared is {n}")
    for key in ("accuracy", "task_accuracy"):
        for name, a in (cert.get(key) or {}).items() if isinstance(cert.get(key), dict) else ():
            if not isinstance(a, (int, float)) or isinstance(a, bool) or not 0 <= a <= 1 \
                    or abs(a * n - round(a * n)) > 1e-6 * n:
                out.append(f"{key}.{name} is {a!r}: not a count of correct samples out of the {n} compared")
    undecided = cert.get("task_undecided", {}).get("count", {}) if isinstance(cert.get("task_undecided"), dict) \
        else {}
    for name, u in undecided.items() if isinstance(undecided, dict) else ():
        if not _whole(u) or u > n:
            out.append(f"task_undecided.count.{name} is {u!r}: not a count of at most {n} samples")
    for row in cert.get("layers", []) if isinstance(cert.get("layers"), list) else ():
        if isinstance(row, dict) and _whole(row.get("spikes")) and _whole(row.get("neurons")) \
                and row["spikes"] > n * vec["sample_steps"] * row["neurons"]:
            out.append(f"layers: {row.get('layer')} has {row['spikes']:,} spikes, more than {n} samples x "
                       f"{vec['sample_steps']} steps x {row['neurons']} neurons can hold")
    return out
