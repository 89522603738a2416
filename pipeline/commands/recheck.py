"""``python -m pipeline recheck DIR``: re-check a certified run or verify folder from its files alone.

A received folder is untrusted input. In order, before anything runs: the certificate's every field is
validated (``pipeline/certify/certificate.py``); every certified file must be a plain file inside the folder
with the certified sha256 (anything else is named, TAMPERED, and nothing is run on it); the versions that differ
from the certificate's are listed; the HDF5 files may not reach outside themselves (``hardware/h5safe.py``);
``model.nir`` is read exactly; the vectors must be what the certificate and ``model.nir`` declare (samples,
steps, layers, neurons, booleans). Then the stored vectors are replayed on every backend the certificate names,
through the same verification stage as run and verify (``hardware/judge/equivalence.py``), and the verdict is the
more severe of the certified one and the replay's: a DIVERGED certificate never rechecks as IDENTICAL, a
silent replay is SILENT whatever the certificate says, and replaying the integer reference on its own stored
output is a reproduction, never a check.
"""
from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from hardware import h5safe
from hardware.backends import BACKENDS, Options
from hardware.errors import GraphError
from hardware.graph import nir_checks, nir_contract, read
from hardware.judge import equivalence, results
from hardware.judge.results import Expected, Verification
from pipeline.certify import certificate, received, vectors
from pipeline.certify.certificate import CERTIFICATE, Certificate
from pipeline.certify.errors import CertificateError
from pipeline.report.summary import silence_lines, verification_lines


@dataclass(frozen=True)
class Recheck:
    folder: Path
    certificate: Certificate
    tampered: tuple[str, ...]
    version_differences: tuple[str, ...]
    vectors: str = ""                        # what was found in vectors.h5
    verification: Verification | None = None  # the replay (None when tampered)

    @property
    def certified(self) -> str:
        return self.certificate.verdict

    @property
    def verdict(self) -> str:
        if self.tampered:
            return "TAMPERED"
        return results.worst(self.certified, self.verification.verdict)

    @property
    def exit_code(self) -> int:
        return results.exit_code(self.verdict)

    def lines(self) -> list[str]:
        c = self.certificate
        out = [f"{self.folder}: certificate of a {c.kind} written {c.written}, verdict "
               f"{self.certified}; expected spikes: {c.expected}"]
        out += [f"version differs: {d}" for d in self.version_differences]
        if self.tampered:
            out += [f"TAMPERED: {t}" for t in self.tampered]
            out.append("TAMPERED: nothing was run on a folder whose certificate or files contradict each other; exit "
                       "status 1")
            return out
        files = c.files_sha256
        out.append(f"hashes: {len(files)} certified files unchanged ({', '.join(files)})")
        out.append(self.vectors)
        v = self.verification
        out += verification_lines(v)
        out += silence_lines(v)
        if self.certified == "DIVERGED" and v.verdict != "DIVERGED":
            out.append("DIVERGED: the certificate records a divergence that the stored vectors did not reproduce "
                       f"(backends: {', '.join(b for b, r in c.backends.items() if r.get('verdict') == 'DIVERGED')})")
        out.append(f"verdict: {self.verdict} (certified {self.certified}, replay {v.verdict}); exit status "
                   f"{self.exit_code}")
        return out

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "certified": self.certified, "tampered": list(self.tampered),
                "version_differences": list(self.version_differences),
                "replay": self.verification.to_json() if self.verification else None}


def _plain_file(folder: Path, name: str) -> str | None:
    """Why ``folder/name`` is not a plain file of the folder (None when it is)."""
    p = folder / name
    try:
        mode = p.lstat().st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "a symbolic link, not a file of the folder"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def tampered(folder: Path, cert: Certificate) -> list[str]:
    """One line per certified file that is missing, not a plain file, or whose sha256 differs."""
    lines = []
    for name, digest in cert.files_sha256.items():
        why = _plain_file(folder, name)
        if why:
            lines.append(f"{name}: {why} (certified sha256 {digest[:16]}...)")
        elif certificate.sha256(folder / name) != digest:
            lines.append(f"{name}: sha256 differs from the certificate's ({digest[:16]}... certified): the file "
                         "changed after it was certified")
    return lines


def against_graph(cert: Certificate, net, nodes: dict[str, str]) -> list[str]:
    """The counts of the certificate that model.nir contradicts: steps per sample, steps past each sample's end,
    the layers (their nodes and neurons) and the readout."""
    out, vec = [], cert.vectors
    if net.n_steps is not None and vec.sample_steps != net.n_steps:
        out.append(f"vectors.sample_steps is {vec.sample_steps}, but model.nir runs {net.n_steps} steps per sample")
    tail = equivalence.tail_steps(net)
    if vec.tail_steps != tail:
        out.append(f"vectors.tail_steps is {vec.tail_steps}, but model.nir's depth gives {tail} steps past each "
                   "sample's end")
    rows = {r.get("layer"): r for r in cert.layers if isinstance(r, dict)} if isinstance(cert.layers, tuple) else {}
    if set(rows) != set(net.populations):
        out.append(f"layers lists {sorted(map(str, rows))}; model.nir's layers are {sorted(net.populations)}")
    for k, pop in net.populations.items():
        if k in rows and (rows[k].get("neurons") != pop.size or rows[k].get("node") != nodes.get(k, k)):
            out.append(f"layers: {k} is node {rows[k].get('node')!r} of {rows[k].get('neurons')!r} neurons; "
                       f"model.nir has node {nodes.get(k, k)!r} of {pop.size}")
    readout = list(cert.readout) if isinstance(cert.readout, tuple) else cert.readout
    if readout != list(net.readout):
        out.append(f"readout is {readout!r}; model.nir's readout is {list(net.readout)}")
    return out


def recheck(folder: Path, workers: int = 2, progress: bool = True) -> Recheck:
    """Re-check a certified folder from its files alone."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CertificateError(f"{folder}: not a folder (give the run or verify folder that holds {CERTIFICATE})")
    why = _plain_file(folder, CERTIFICATE)
    if why and why != "missing":
        raise CertificateError(f"{folder / CERTIFICATE}: {why}")
    raw = received.read(folder)
    cert = Certificate.from_json(raw)
    now = certificate.versions()
    diffs = tuple(f"{k}: certified with {v}, here {now.get(k)}" for k, v in cert.versions.items()
                  if now.get(k) != v)
    changed = tampered(folder, cert) + [f"{CERTIFICATE}: {line}" for line in received.inconsistencies(raw)]
    if changed:
        return Recheck(folder, cert, tuple(changed), diffs)
    for name in cert.files_sha256:
        if name.endswith((".nir", ".net", ".h5")):
            h5safe.check(folder / name)
    graph = nir_checks.read(folder / "model.nir")
    errors = nir_contract.contract_errors(graph)
    if errors:
        raise GraphError(f"{folder / 'model.nir'}: {errors[0]}")
    net = read.load(graph, exact=True)
    vec = cert.vectors
    tail = equivalence.tail_steps(net)
    against = [f"{CERTIFICATE}: {line}" for line in against_graph(cert, net, vectors.node_names(graph))]
    if against:
        return Recheck(folder, cert, tuple(against), diffs)
    stored = vectors.read(folder / vectors.VECTORS, graph, net, vec.samples, vec.sample_steps, tail)
    found = (f"vectors: {vec.samples} samples x {vec.sample_steps + tail} steps ({vec.sample_steps} per "
             f"sample + {tail} past its end), {len(net.populations)} layers, as the certificate and model.nir declare")
    expected = Expected(stored.expected, cert.expected_by, f"stored in {vectors.VECTORS}: {cert.expected}")
    v = equivalence.verify(net, stored.x, expected, [BACKENDS[b] for b in cert.recheck_backends],
                           Options(folder, workers, 250, progress))
    return Recheck(folder, cert, (), diffs, found, v)
