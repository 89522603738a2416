"""``python -m pipeline recheck DIR``: re-check a certified run or verify folder from its files alone.

Hashes first (a changed or missing file is named and nothing is run on it), then the versions that differ from
the certificate's, then ``model.nir`` read exactly and the test vectors (``pipeline/handoff.py``) replayed on every
backend the certificate names, compared in every layer, step and neuron with the stored spikes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from hardware.errors import GraphError
from pipeline.config import VerifyConfig
from pipeline.handoff import CERTIFICATE, FORMAT, VECTORS, read_vectors, sha256, versions


class RecheckError(ValueError):
    """The folder cannot be re-checked at all (no certificate, not a folder): exit 2."""


def read_certificate(folder: Path) -> dict:
    if not folder.is_dir():
        raise RecheckError(f"{folder}: not a folder (give the run or verify folder that holds {CERTIFICATE})")
    path = folder / CERTIFICATE
    try:
        cert = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecheckError(f"{path}: no certificate in this folder (written by run and verify since "
                           "certificates were introduced)") from None
    except (OSError, ValueError) as e:
        raise RecheckError(f"{path}: not a readable certificate ({' '.join(str(e).split())})") from None
    if not isinstance(cert, dict) or cert.get("certificate") != FORMAT:
        raise RecheckError(f"{path}: not a certificate of this tool (expected \"certificate\": \"{FORMAT}\")")
    for key in ("files_sha256", "recheck_backends", "versions"):
        if key not in cert:
            raise RecheckError(f"{path}: the certificate lacks {key!r}")
    return cert


def tampered(folder: Path, cert: dict) -> list[str]:
    """One line per certified file that is missing or whose sha256 differs."""
    lines = []
    for name, digest in cert["files_sha256"].items():
        p = folder / name
        if not p.is_file():
            lines.append(f"{name}: missing (certified sha256 {digest[:16]}...)")
        elif (now := sha256(p)) != digest:
            lines.append(f"{name}: sha256 differs from the certificate's ({now[:16]}... vs {digest[:16]}...): the "
                         "file changed after it was certified")
    return lines


def version_differences(cert: dict) -> list[str]:
    now = versions()
    return [f"{k}: certified with {v}, here {now.get(k)}" for k, v in cert["versions"].items() if now.get(k) != v]


def recheck(folder: Path, workers: int = 2) -> tuple[str, list[str], dict]:
    """Re-check a certified folder from its files alone: (verdict, lines to print, per-backend results).

    Verdicts: IDENTICAL (every backend reproduced every stored spike), DIVERGED (one did not: the first
    divergence is named), TAMPERED (a certified file is missing or changed: nothing is run on it)."""
    from hardware import nir_checks, nir_contract, read
    from hardware.equivalence import compare
    from pipeline.run import BACKENDS
    folder = Path(folder)
    cert = read_certificate(folder)
    lines = [f"{folder}: certificate of a {cert.get('kind', '?')} written {cert.get('written', '?')}, verdict "
             f"{cert.get('verdict', '?')}"]
    changed = tampered(folder, cert)
    diffs = version_differences(cert)
    lines += [f"version differs: {d}" for d in diffs]
    if changed:
        lines += [f"TAMPERED: {c}" for c in changed]
        lines.append("TAMPERED: nothing was run on changed files; exit status 1")
        return "TAMPERED", lines, {}
    lines.append(f"hashes: {len(cert['files_sha256'])} certified files unchanged ("
                 f"{', '.join(cert['files_sha256'])})")
    if "model.nir" not in cert["files_sha256"] or VECTORS not in cert["files_sha256"]:
        raise RecheckError(f"{folder / CERTIFICATE}: certifies no model.nir and {VECTORS}, so there is nothing "
                           "to replay (see its not_checked)")
    graph = nir_checks.read(folder / "model.nir")
    errors = nir_contract.contract_errors(graph)
    if errors:
        raise GraphError(f"{folder / 'model.nir'}: {errors[0]}")
    net = read.load(graph, exact=True)
    x, expected, volt = read_vectors(folder / VECTORS, graph, net)
    names = list(net.populations)
    results, verdict = {}, "IDENTICAL"
    opts = VerifyConfig(workers=workers)
    for name in cert["recheck_backends"]:
        if name not in BACKENDS:
            raise RecheckError(f"{folder / CERTIFICATE}: names backend {name!r}, which this version does not have "
                               f"({', '.join(BACKENDS)})")
        t0 = time.perf_counter()
        trace = BACKENDS[name](net, x, opts, folder)
        r = compare([expected[k] for k in names], [trace.spikes[k] for k in names], names)
        bad_v = [k for k in volt if k in trace.voltage and not np.array_equal(volt[k], trace.voltage[k])]
        same = r["identical"] == r["compared"] and not bad_v
        results[name] = {**r, "voltage_differs": bad_v, "seconds": round(time.perf_counter() - t0, 2)}
        if same:
            lines.append(f"{name:>9}: {r['compared']}/{r['compared']} stored samples reproduced bit for bit in every "
                         f"layer and step [IDENTICAL]")
        else:
            verdict = "DIVERGED"
            f = r["first_divergence"]
            where = (f"first divergence: sample {f['sample']}, layer {f['layer']}, neuron {f['neuron']}, step "
                     f"{f['step']}" if f else f"readout voltage differs in {', '.join(bad_v)}")
            lines.append(f"{name:>9}: {r['identical']}/{r['compared']} stored samples reproduced [DIVERGED]; {where}")
    if verdict == "IDENTICAL" and cert.get("verdict") == "SILENT":
        verdict = "SILENT"
        lines.append("SILENT: reproduced, but the certified output never spiked, so it certifies nothing; exit 3")
    return verdict, lines, results


EXIT_CODES = {"IDENTICAL": 0, "DIVERGED": 1, "TAMPERED": 1, "SILENT": 3}
