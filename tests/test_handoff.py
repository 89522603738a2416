"""The hand-off: certificate.json, test vectors in NIR's data format, and `recheck` from the folder alone.

Every hole the review found in what recheck claims has a test here: a DIVERGED certificate, empty or short
vectors, silent vectors, a certificate that claims more vectors than are stored, a readout voltage a backend does
not give, a self-comparison called a check, and the batched Lava steps that were never compared."""
import json
import shutil
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import cli
from graphs import dense_recurrent, netx_chain

from hardware.backends import BACKENDS, Backend
from hardware.graph import read
from hardware.judge import equivalence, results
from hardware.judge.trace import Trace
from pipeline.certify import certificate, vectors
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]


def copy_of(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "elsewhere" / "handed-over"
    shutil.copytree(folder, dest)
    return dest


def recertify(folder: Path, **fields) -> dict:
    """Rewrite certificate fields (and every hash), as someone who edits a folder consistently would."""
    cert = json.loads((folder / "certificate.json").read_text())
    cert.update(fields)
    cert["files_sha256"] = {k: certificate.sha256(folder / k) for k in cert["files_sha256"]}
    (folder / "certificate.json").write_text(json.dumps(cert))
    return cert


def rewrite_vectors(folder: Path, edit) -> None:
    """Read the stored vectors, let ``edit(x, expected)`` change them, write them back in NIR's format."""
    graph = nir.read(str(folder / "model.nir"))
    net = read.load(graph)
    cert = json.loads((folder / "certificate.json").read_text())
    v = cert["vectors"]
    stored = vectors.read(folder / vectors.VECTORS, graph, net, v["samples"], v["sample_steps"], v["tail_steps"])
    x, expected = edit(stored.x.copy(), Trace({k: s.copy() for k, s in stored.expected.spikes.items()},
                                              dict(stored.expected.voltage)))
    vectors.write(folder / vectors.VECTORS, graph, net, x, expected)


def recheck(capsys, folder: Path) -> tuple[int, str, str]:
    rc = main(["recheck", str(folder)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="session")
def chain_folder(tmp_path_factory) -> Path:
    """verify of a small foreign chain, quantised for netx: reference, Lava and netx, 6 samples, 2 stored."""
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    tmp = tmp_path_factory.mktemp("chain")
    nir.write(tmp / "chain.nir", netx_chain())
    report = verify(tmp / "chain.nir", tmp / "v", verify_job(samples=6, netx=True, vectors=2), progress=False)
    assert report.verification.verdict == "IDENTICAL"
    return tmp / "v"


@pytest.fixture
def chain(chain_folder, tmp_path) -> Path:
    return copy_of(chain_folder, tmp_path)


# --- a verify folder: what the certificate says, and recheck of it --------------------------------------------

@pytest.mark.slow
def test_a_verify_certificate_says_per_backend_what_it_was_compared_against(chain):
    cert = json.loads((chain / "certificate.json").read_text())
    assert cert["expected"]["by"] == "reference" and cert["verdict"] == "IDENTICAL" and cert["exit_status"] == 0
    assert cert["backends"]["lava"]["certifies"] and cert["backends"]["netx"]["certifies"]
    assert cert["backends"]["lava"]["against"].startswith("integer reference")
    assert cert["backends"]["float graph"]["certifies"] is False and cert["backends"]["float graph"]["verdict"] == \
        "MEASURED"
    assert cert["recheck_backends"] == ["reference", "lava", "netx"]
    assert cert["vectors"]["samples"] == 2 and cert["vectors"]["indices"] == [0, 1]
    assert cert["vectors"]["steps"] == cert["vectors"]["sample_steps"] + cert["vectors"]["tail_steps"] == 20 + 1
    assert "fits: " in cert["loihi2"]


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
def test_recheck_of_a_verify_folder_never_calls_the_reference_replaying_itself_a_check(chain, capsys):
    rc, out, _ = recheck(capsys, chain)
    assert rc == 0, out
    assert "reference: 2/2 samples reproduced its own stored output [REPRODUCED] (a reproduction, not an " \
           "independent check)" in out
    assert "lava: 2/2 samples spike-identical in every layer and step it computed" in out
    assert "verdict: IDENTICAL (certified IDENTICAL, replay IDENTICAL)" in out


def test_a_reference_only_folder_rechecks_as_reference_only_not_identical(tmp_path, capsys):
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    nir.write(tmp_path / "chain.nir", netx_chain())
    report = verify(tmp_path / "chain.nir", tmp_path / "r", verify_job(samples=3, target="reference"), progress=False)
    assert report.verification.verdict == "REFERENCE ONLY"
    cert = json.loads((tmp_path / "r" / "certificate.json").read_text())
    assert cert["recheck_backends"] == ["reference"] and cert["verdict"] == "REFERENCE ONLY"
    rc, out, _ = recheck(capsys, tmp_path / "r")
    assert rc == 0 and "IDENTICAL" not in out.replace("NOT", "")
    assert "verdict: REFERENCE ONLY" in out and "REFERENCE ONLY: no backend was compared" in out



def test_a_certificate_reads_back_as_the_certificate_it_was(tmp_path):
    """Reading certificate.json gives a typed Certificate, and writing that gives back the same JSON."""
    from pipeline.certify.certificate import Certificate
    from pipeline.certify.received import read
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    nir.write(tmp_path / "chain.nir", netx_chain())
    verify(tmp_path / "chain.nir", tmp_path / "r", verify_job(samples=3, target="reference", vectors=2), progress=False)
    raw = read(tmp_path / "r")
    cert = Certificate.from_json(raw)
    assert cert.verdict == "REFERENCE ONLY" and cert.samples == 3 and cert.vectors.samples == 2
    assert cert.recheck_backends == ("reference",) and cert.details["graph"].endswith("chain.nir")
    assert cert.to_json() == raw

@pytest.mark.slow      # recheck replays it on the real Lava
def test_a_diverged_certificate_never_rechecks_as_identical(tmp_path, capsys, monkeypatch):
    """Lava made to diverge on sample 4 of 6 (a fault injected around the real reference) with 2 vectors asked for:
    the divergent sample is stored too, and recheck with the real Lava reports the certified DIVERGED beside a
    replay that did not reproduce it (exit 1)."""
    from hardware.backends import reference
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job

    def faulty(net, x, options):
        trace = reference.simulate(net, x)
        last = list(net.populations)[-1]
        if len(x) > 4:
            trace.spikes[last][4, 7, 0] ^= True
        return trace
    monkeypatch.setitem(BACKENDS, "lava", Backend("lava", "Lava with a fault injected", None, faulty))
    nir.write(tmp_path / "chain.nir", netx_chain())
    report = verify(tmp_path / "chain.nir", tmp_path / "d", verify_job(samples=6, vectors=2), progress=False)
    assert report.verification.verdict == "DIVERGED" and report.verification.backend("lava").diverged == (4,)
    cert = json.loads((tmp_path / "d" / "certificate.json").read_text())
    assert cert["verdict"] == "DIVERGED" and cert["vectors"]["indices"] == [0, 1, 4]
    monkeypatch.undo()
    rc, out, _ = recheck(capsys, tmp_path / "d")
    assert rc == 1, out
    assert "verdict: DIVERGED (certified DIVERGED, replay IDENTICAL)" in out
    assert "the certificate records a divergence that the stored vectors did not reproduce" in out


@pytest.mark.slow
def test_a_flipped_stored_spike_is_found_by_real_lava_and_named(chain, capsys):
    """Divergence detection on Lava (and netx), not only the reference: the stored spikes of sample 1 changed and
    the folder re-certified, so no hash tells."""
    net = read.load(nir.read(str(chain / "model.nir")))
    layer = list(net.populations)[0]

    def flip(x, expected):
        expected.spikes[layer][1, 6, 3] ^= True
        return x, expected
    rewrite_vectors(chain, flip)
    recertify(chain)
    rc, out, _ = recheck(capsys, chain)
    assert rc == 1
    for b in ("lava", "netx"):
        line = next(line for line in out.splitlines() if line.strip().startswith(f"{b}:"))
        assert "1/2 samples" in line and "[DIVERGED]" in line, line
        assert f"first divergence: sample 1, layer {layer}, neuron 3, step 6" in line, line


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
@pytest.mark.parametrize("case, fragment", [
    ("no backends", "recheck_backends is empty"),
    ("claims more vectors", "vectors.indices must list"),
    ("unknown backend", "recheck_backends names \"loihi3\""),
    ("certifying backend not replayed", "backends ['lava'] certify, but recheck_backends does not replay them"),
    ("onnx without model.onnx", "runs from model.onnx, but the certificate certifies no such file"),
])
def test_a_certificate_that_claims_more_than_is_stored_is_refused(chain, capsys, case, fragment):
    cert = json.loads((chain / "certificate.json").read_text())
    fields = {"no backends": {"recheck_backends": []},
              "claims more vectors": {"vectors": {**cert["vectors"], "samples": 5}},
              "unknown backend": {"recheck_backends": ["reference", "loihi3"]},
              "certifying backend not replayed": {"recheck_backends": ["reference", "netx"]},
              "onnx without model.onnx": {"recheck_backends": ["reference", "lava", "netx", "onnx"]}}[case]
    recertify(chain, **fields)
    rc, out, err = recheck(capsys, chain)
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
def test_a_certificate_that_claims_more_vectors_than_it_compared_is_tampered(chain, capsys):
    """100,000 vectors declared (indices listed), 6 samples compared: the counts contradict each other."""
    cert = json.loads((chain / "certificate.json").read_text())
    recertify(chain, vectors={**cert["vectors"], "samples": 100000, "indices": list(range(100000))})
    rc, out, err = recheck(capsys, chain)
    assert rc == 1 and "TAMPERED: certificate.json: vectors.samples is 100,000, more than the 6 samples compared" \
        in out, (out, err)


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
@pytest.mark.parametrize("steps", [0, 1])
def test_vectors_with_fewer_steps_than_model_nir_declares_are_refused(chain, capsys, steps):
    """Vectors cut to 0 or 1 steps (hashes recomputed): never '2/2 reproduced'."""
    with h5py.File(chain / "vectors.h5", "r+") as f:
        for node in f["nodes"].values():
            for obs in node["observables"].values():
                data = obs["data"][()][:, :steps]
                del obs["data"]
                obs.create_dataset("data", data=data)
    recertify(chain)
    rc, out, err = recheck(capsys, chain)
    assert rc == 2 and f"has shape (2, {steps}, " in err and "declare (2, 21, " in err, err


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
def test_silent_vectors_recheck_as_silent_measured_not_carried_over(chain, capsys):
    """All-zero input and expected spikes, re-certified as IDENTICAL: the replay itself finds the readout silent."""
    def zero(x, expected):
        return np.zeros_like(x), Trace({k: np.zeros_like(s) for k, s in expected.spikes.items()})
    rewrite_vectors(chain, zero)
    recertify(chain, verdict="IDENTICAL")
    rc, out, _ = recheck(capsys, chain)
    assert rc == 3 and "verdict: SILENT (certified IDENTICAL, replay SILENT)" in out, out
    assert "no spike reaches it: the input has no spikes" in out


@pytest.mark.slow
def test_recheck_of_a_copied_folder_passes_in_a_fresh_process(chain):
    proc = cli("recheck", str(chain), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert result["verdict"] == "IDENTICAL" and result["replay"]["backends"]["lava"]["identical"] == 2


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
@pytest.mark.parametrize("name", ["model.nir", "model.net", "vectors.h5"])
def test_one_flipped_byte_is_named(chain, capsys, name):
    data = bytearray((chain / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (chain / name).write_bytes(bytes(data))
    rc, out, _ = recheck(capsys, chain)
    assert rc == 1 and f"TAMPERED: {name}: sha256 differs" in out
    assert sum(line.startswith("TAMPERED: ") and ": sha256" in line for line in out.splitlines()) == 1


@pytest.mark.slow      # the shared folder is a real Lava and netx verification
def test_version_differences_are_listed(chain, capsys):
    cert = json.loads((chain / "certificate.json").read_text())
    recertify(chain, versions={**cert["versions"], "numpy": "0.0.1"})
    rc, out, _ = recheck(capsys, chain)
    assert rc == 0 and "version differs: numpy: certified with 0.0.1, here 1.26.4" in out


@pytest.mark.parametrize("case", ["missing folder", "no certificate", "not json", "foreign json", "version 1"])
def test_recheck_bad_input_is_one_line_and_exit_2(tmp_path, case):
    folder = tmp_path / "f"
    if case != "missing folder":
        folder.mkdir()
    text = {"not json": "{half", "foreign json": '{"certificate": "someone else"}',
            "version 1": '{"certificate": "nmpipe-certificate/v1"}'}.get(case)
    if text:
        (folder / "certificate.json").write_text(text)
    proc = cli("recheck", str(folder))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], proc.stderr
    if case == "version 1":
        assert "an earlier version" in lines[0]


# --- the verification stage: what is compared ----------------------------------------------------------------

@pytest.mark.slow
def test_a_readout_voltage_missing_from_a_backend_is_a_divergence():
    net = read.load(dense_recurrent(np.random.default_rng(0)), dt=1e-3)
    from hardware.backends import reference
    x = (np.random.default_rng(1).random((2, 25, 12)) < 0.3).astype(np.int64)
    ref = reference.simulate(net, x)
    assert np.abs(ref.voltage["readout"]).max() > 0
    expected = results.Expected(ref, "reference", "the reference")
    without = equivalence.compare(list(net.populations), expected, Trace(dict(ref.spikes)), 25, "lava", "lava")
    assert without.identical == 0 and without.first_divergence.observable == "v missing"
    changed = Trace(dict(ref.spikes), {"readout": ref.voltage["readout"].copy()})
    changed.voltage["readout"][1, 10, 0] += 1
    one = equivalence.compare(list(net.populations), expected, changed, 25, "lava", "lava")
    assert one.identical == 1 and str(one.first_divergence) == "sample 1, layer readout, voltage, neuron 0, step 10"


@pytest.mark.slow
def test_batched_lava_tails_are_compared_where_the_previous_sample_ends():
    """The steps a batched Lava layer spends on the previous sample before its reset are that sample's tail:
    a spike there (say Lava spiked after a sample ended where the model does not) is a divergence, named past the
    sample's end; the first sample of a network is computed from rest."""
    from hardware.backends.lava import untangle
    from hardware.graph.ir import Dense, Network, Neurons, Projection
    z = np.zeros(2, np.int64)
    pops = {k: Neurons(k, (2,), 0, 0, 10, z, z, z) for k in ("a", "b", "c")}
    w = Dense(np.ones((2, 2), np.int64), 0)
    net = Network((2,), pops, (Projection("input", "a", w), Projection("a", "b", w), Projection("b", "c", w)),
                  ("c",), 1e-3, 4, 6)
    K, n = 3, 6
    stream = {k: np.zeros((K * n, 2), np.uint8) for k in pops}
    stream["c"][n + 1, 0] = 1               # layer c (depth 3), window of sample 1, step 1: sample 0's step 7
    trace = untangle(net, stream, K, n)
    assert trace.spikes["c"].shape == (K, n + 2, 2)
    assert trace.spikes["c"][0, n + 1, 0] and not trace.spikes["c"][1, 1, 0]
    assert trace.mask("c")[0].all()                                     # from rest, and its tail
    assert not trace.mask("c")[1, :2].any() and trace.mask("c")[1, 2:].all()
    assert trace.mask("c")[2, 2:n].all() and not trace.mask("c")[2, n:].any()    # the last sample: no tail
    expected = results.Expected(Trace({k: np.zeros((K, n + 2, 2), bool) for k in pops}), "golden", "zeros")
    r = equivalence.compare(list(pops), expected, trace, n, "lava", "lava")
    assert r.identical == 2 and r.diverged == (0,)
    assert str(r.first_divergence).startswith("sample 0, layer c, neuron 0, step 7 (past the sample's 6 steps")


def test_vectors_store_the_first_samples_and_the_diverged_ones():
    assert vectors.choose(10, 3, []).tolist() == [0, 1, 2]
    assert vectors.choose(10, 3, [1, 7, 5, 9, 8]).tolist() == [0, 1, 2, 5, 7, 8]
    assert vectors.choose(2, 32, [1]).tolist() == [0, 1]


# --- a run folder (slow: one quick run on every backend, shared with tests/test_cli.py) -------------------------

@pytest.fixture
def run_all(quick_run_all) -> Path:
    out, stdout = quick_run_all
    assert f"python -m pipeline recheck {out}" in stdout
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_certificate_states_what_was_checked(run_all):
    cert = json.loads((run_all / "certificate.json").read_text())
    assert cert["verdict"] == "IDENTICAL" and cert["kind"] == "run" and cert["ranks"] == 1
    assert cert["expected"]["by"] == "golden" and cert["certificate"] == "nmpipe-certificate/v2"
    assert set(cert["files_sha256"]) == {"model.nir", "model.net", "model.onnx", "vectors.h5"}
    for name, digest in cert["files_sha256"].items():
        assert certificate.sha256(run_all / name) == digest
    assert cert["recheck_backends"] == ["reference", "lava", "onnx", "netx"]
    for b in cert["recheck_backends"]:
        row = cert["backends"][b]
        assert row["compared"] == row["identical"] == 40 and row["first_divergence"] is None and row["certifies"]
        assert row["against"].startswith("golden model")
    for b in ("lava", "netx"):      # batched: every step Lava computes, past each sample's end too
        assert cert["backends"][b]["tail_positions_compared"] > 0
    assert cert["backends"]["model_float.onnx"]["certifies"] is False
    assert set(cert["versions"]) >= {"python", "numpy", "nir", "lava-nc", "lava-dl", "onnxruntime", "torch",
                                     "nmpipe", "nmpipe_commit"}
    report = json.loads((run_all / "report.json").read_text())
    assert [(row["layer"], row["spikes"]) for row in cert["layers"]] == \
        [(L["layer"], L["spikes"]) for L in report["layers"]]
    assert cert["vectors"]["samples"] == 32 and any("32 of the 40" in n for n in cert["not_checked"])
    assert cert["recheck_command"] == f"python -m pipeline recheck {run_all}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vectors_read_back_with_nir_equal_the_runs_spikes(run_all):
    """nir.read_data alone (no code of ours) gives the input and the golden model's spikes in every layer,
    run on past each sample's end."""
    import torch

    from hardware.graph.ir import input_spikes
    from models.snn import golden_spikes
    from pipeline.architecture import build_model
    from pipeline.config import RunConfig, override
    from pipeline.data import sets
    data = nir.read_data(str(run_all / "vectors.h5"))
    graph = nir.read(str(run_all / "model.nir"))
    cfg = RunConfig()
    for section, values in json.loads((run_all / "config.json").read_text()).items():
        for key, value in values.items():
            cfg = override(cfg, f"{section}.{key}", value)
    frames = sets.load(cfg.data).test.frames[:32]
    model = build_model(cfg, tuple(frames.shape[2:]), 10)
    model.load_state_dict(torch.load(run_all / "model.pt", weights_only=True))
    net = read.load(graph)
    tail = max(net.depth.values()) - 1
    gold = golden_spikes(model.deployed(), frames, tail=tail)
    x = data.nodes["input"].observables["spikes"]
    assert x.data.dtype == bool and x.dt == pytest.approx(net.dt)
    assert np.array_equal(x.data[:, :net.n_steps], input_spikes(net, frames).astype(bool))
    assert not x.data[:, net.n_steps:].any()
    cuba = [k for k, node in graph.nodes.items() if isinstance(node, nir.CubaLIF)]
    assert set(data.nodes) == {"input", *cuba}
    for node, g in zip(sorted(cuba), gold):
        stored = data.nodes[node].observables["spikes"].data
        assert stored.shape == g.shape == (32, net.n_steps + tail, g.shape[2]) and np.array_equal(stored, g), node
    assert sum(int(g.sum()) for g in gold) > 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_recheck_of_a_copied_run_folder_passes_in_a_fresh_process(run_all, tmp_path):
    """On 'another machine': the folder alone, without model.pt, config.json or the dataset."""
    copy = copy_of(run_all, tmp_path)
    for name in ("model.pt", "config.json", "report.json"):
        (copy / name).unlink()
    proc = cli("recheck", str(copy))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for b in ("reference", "lava", "onnx", "netx"):
        assert f"{b}: 32/32 samples spike-identical in every layer and step it computed" in proc.stdout
    assert "hashes: 4 certified files unchanged" in proc.stdout
    assert "verdict: IDENTICAL (certified IDENTICAL, replay IDENTICAL); exit status 0" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_divergence_in_a_run_folder_is_named_on_every_backend(run_all, tmp_path, capsys):
    copy = copy_of(run_all, tmp_path)
    net = read.load(nir.read(str(copy / "model.nir")))
    layer = list(net.populations)[1]

    def flip(x, expected):
        expected.spikes[layer][3, 5, 7] ^= True
        expected.spikes[layer][4, 2, 1] ^= True          # a later sample: not the first divergence
        return x, expected
    rewrite_vectors(copy, flip)
    recertify(copy)
    rc, out, _ = recheck(capsys, copy)
    assert rc == 1
    for b in ("reference", "lava", "onnx", "netx"):
        line = next(line for line in out.splitlines() if line.strip().startswith(f"{b}:"))
        assert f"first divergence: sample 3, layer {layer}, neuron 7, step 5" in line and "30/32" in line, line


def test_any_read_network_is_written_as_nir_and_read_back_exactly():
    """export.nir_export.from_network on the hand-built foreign graphs (recurrence, delays, biases, voltage
    readouts, pooling, 1-D convolution): the file read back runs spike and voltage identical."""
    import tempfile

    from graphs import GRAPHS, conv_graph, foreign_graph

    from export import nir_export
    from hardware.backends import reference
    from hardware.graph import nir_checks, nir_contract
    graphs = {k: f(np.random.default_rng(0)) for k, f in GRAPHS.items()}
    graphs.update(foreign=foreign_graph(), conv=conv_graph())
    rng = np.random.default_rng(1)
    for name, g in graphs.items():
        net = read.load(g, dt=1e-3)
        x = (rng.random((3, 30, net.input_size)) < 0.3).astype(np.int64)
        written, _ = nir_export.from_network(net, 30)
        with tempfile.TemporaryDirectory() as tmp:
            nir_export.write(written, Path(tmp) / "g.nir")
            back = nir_checks.read(Path(tmp) / "g.nir")
        assert nir_contract.contract_errors(back) == [], name
        exact = read.load(back, exact=True)
        assert exact.exact and list(exact.populations) == list(net.populations), name
        a, b = reference.simulate(net, x), reference.simulate(exact, x)
        for k in net.populations:
            assert np.array_equal(a.spikes[k], b.spikes[k]), (name, k)
        for k in a.voltage:
            assert np.array_equal(a.voltage[k], b.voltage[k]), (name, k)
        assert sum(int(s.sum()) for s in a.spikes.values()) > 0, name
