"""A received ``certificate.json``: read and validated field by field before anything is run, and its counts checked
against each other.

A certificate arrives with a folder from someone else: :func:`read` validates every field (types, ranges, plain
file names inside the folder, backends this version has) and names the field it refuses (exit 2);
:func:`inconsistencies` lists every count that contradicts another (recheck reports them as TAMPERED). What is
written is ``pipeline/certify/certificate.py``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from hardware.backends import BACKENDS
from hardware.graph.read import MAX_STEPS
from hardware.judge.results import VERDICTS
from pipeline.certify.certificate import (
    CERTIFICATE,
    CERTIFIED_FILES,
    FORMAT,
    MAX_BYTES,
    MAX_VECTORS,
)
from pipeline.certify.errors import CertificateError
from pipeline.certify.vectors import VECTORS


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
                               f"{sorted(str(v) for v in set(VERDICTS) - {'TAMPERED'})}")
    files = _files(cert, path)
    _backends(cert, path, files)
    _vectors(cert, path)
    if not isinstance(cert.get("ranks"), int) or cert["ranks"] < 1:
        raise CertificateError(f"{path}: field 'ranks' must be a whole number >= 1")
    n = cert.get("samples_compared")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10_000_000:
        raise CertificateError(f"{path}: field 'samples_compared' must be a whole number 1..10,000,000 (the samples "
                               "the verification compared; certificates written before it was added: run or verify "
                               "again)")


def _files(cert: dict, path: Path) -> dict:
    """files_sha256 (the folder's own certified files, no paths), versions and what the expected spikes are."""
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
    return files


def _backends(cert: dict, path: Path, files: dict) -> None:
    """Each backend's counts, and recheck_backends: backends this version replays, from certified files, every
    certifying one."""
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


def _vectors(cert: dict, path: Path) -> None:
    """What vectors.h5 declares: samples, steps and indices within this tool's bounds."""
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


# --- counts that must agree with each other ---------------------------------------------------------------------

def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def inconsistencies(cert: dict) -> list[str]:
    """Every count the certificate states that contradicts another it states (a certificate of this tool never
    does): one line each. Recheck reports them as TAMPERED."""
    return _backend_counts(cert) + _verdict_counts(cert) + _vector_counts(cert) + _result_counts(cert)


def _backend_counts(cert: dict) -> list[str]:
    out, n = [], cert["samples_compared"]
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
    return out


def _verdict_counts(cert: dict) -> list[str]:
    certifying = {b: r for b, r in cert["backends"].items() if r["certifies"]}
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
        return [f"verdict is {cert['verdict']}, but the backends' counts give {implied}"]
    return []


def _vector_counts(cert: dict) -> list[str]:
    out, n, vec = [], cert["samples_compared"], cert["vectors"]
    if vec.get("steps") != vec["sample_steps"] + vec["tail_steps"]:
        out.append(f"vectors.steps is {vec.get('steps')!r}, but sample_steps {vec['sample_steps']} + tail_steps "
                   f"{vec['tail_steps']} is {vec['sample_steps'] + vec['tail_steps']}")
    if vec["samples"] > n:
        out.append(f"vectors.samples is {vec['samples']:,}, more than the {n:,} samples compared")
    if any(i >= n for i in vec["indices"]) or len(set(vec["indices"])) != len(vec["indices"]):
        out.append(f"vectors.indices are not {vec['samples']} distinct samples below {n}")
    return out


def _result_counts(cert: dict) -> list[str]:
    """Accuracies, undecided counts and layer spike counts against the samples compared."""
    out, n, vec = [], cert["samples_compared"], cert["vectors"]
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
