"""The hand-off: certificate.json, test vectors in NIR's data format, and `recheck` from the folder alone."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from graphs import netx_chain
from pipeline import handoff
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def run_all(quick_run_all) -> Path:
    """One quick run on every backend (reference, Lava, onnxruntime, netx), shared with tests/test_cli.py."""
    out, stdout = quick_run_all
    assert f"python -m pipeline recheck {out}" in stdout
    return out


def copy_of(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "elsewhere" / "handed-over"
    shutil.copytree(folder, dest)
    return dest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_certificate_states_what_was_checked(run_all):
    cert = json.loads((run_all / "certificate.json").read_text())
    assert cert["verdict"] == "IDENTICAL" and cert["kind"] == "run" and cert["ranks"] == 1
    assert set(cert["files_sha256"]) == {"model.nir", "model.net", "model.onnx", "vectors.h5"}
    for name, digest in cert["files_sha256"].items():
        assert handoff.sha256(run_all / name) == digest
    assert cert["recheck_backends"] == ["reference", "lava", "onnx", "netx"]
    for b in cert["recheck_backends"]:
        row = cert["backends"][b]
        assert row["compared"] == row["identical"] == 40 and row["first_divergence"] is None
    assert set(cert["versions"]) >= {"python", "numpy", "nir", "lava-nc", "lava-dl", "onnxruntime", "torch",
                                     "nmpipe", "nmpipe_commit"}
    assert cert["versions"]["lava-nc"] == "0.10.0" and cert["versions"]["nir"] == "1.0.8"
    assert cert["numeric_contract"]["name"] == "loihi2-cuba-lif-fixed_pt/v1"
    report = json.loads((run_all / "report.json").read_text())
    assert [(row["layer"], row["spikes"]) for row in cert["layers"]] == \
        [(k, v["golden_spikes"]) for k, v in report["backends"]["reference"]["layers"].items()]
    assert [row["silent"] for row in cert["layers"]] == [row["spikes"] == 0 for row in cert["layers"]]
    assert cert["vectors"]["samples"] == 32 and any("32 of the 40" in n for n in cert["not_checked"])
    assert cert["recheck_command"] == f"python -m pipeline recheck {run_all}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vectors_read_back_with_nir_equal_the_runs_spikes(run_all):
    """nir.read_data alone (no code of ours) gives the input and the golden model's spikes in every layer."""
    import torch

    from hardware import read
    from hardware.ir import input_spikes
    from models.snn import golden_spikes
    from pipeline.config import RunConfig
    from pipeline.distill import store
    from pipeline.train import build_model
    data = nir.read_data(str(run_all / "vectors.h5"))
    graph = nir.read(str(run_all / "model.nir"))
    cfg = RunConfig.from_dict(json.loads((run_all / "config.json").read_text()))
    _, test = store.training_splits(cfg.data)
    frames = test.frames[:32]
    model = build_model(cfg, tuple(frames.shape[2:]), len(test.classes))
    model.load_state_dict(torch.load(run_all / "model.pt"))
    gold = golden_spikes(model.deployed(), frames)
    net = read.load(graph)
    x = data.nodes["input"].observables["spikes"]
    assert x.data.dtype == bool and x.dt == pytest.approx(net.dt)
    assert np.array_equal(x.data, input_spikes(net, frames).astype(bool))
    cuba = [k for k, node in graph.nodes.items() if isinstance(node, nir.CubaLIF)]
    assert set(data.nodes) == {"input", *cuba}
    for node, g in zip(sorted(cuba), gold):
        stored = data.nodes[node].observables["spikes"].data
        assert stored.shape == g.shape == (32, net.n_steps, g.shape[2]) and np.array_equal(stored, g), node
    assert sum(int(g.sum()) for g in gold) > 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_recheck_of_a_copied_folder_passes_in_a_fresh_process(run_all, tmp_path):
    """On 'another machine': the folder alone, without model.pt, config.json or the dataset."""
    copy = copy_of(run_all, tmp_path)
    for name in ("model.pt", "config.json", "report.json"):
        (copy / name).unlink()
    proc = cli("recheck", str(copy), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for b in ("reference", "lava", "onnx", "netx"):
        assert f"{b}: 32/32 stored samples reproduced bit for bit in every layer and step [IDENTICAL]" in proc.stdout
    assert "hashes: 4 certified files unchanged" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["model.nir", "model.net", "model.onnx", "vectors.h5"])
def test_one_flipped_byte_is_named(run_all, tmp_path, capsys, name):
    copy = copy_of(run_all, tmp_path)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    assert main(["recheck", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"TAMPERED: {name}: sha256 differs" in out
    assert sum("TAMPERED: model" in line or "TAMPERED: vectors" in line for line in out.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_divergence_is_named_and_version_differences_listed(run_all, tmp_path, capsys):
    """Vectors that a backend does not reproduce (re-certified, so not a hash mismatch): the first divergence is
    named by sample, layer, neuron and step; versions unlike the certificate's are listed."""
    from hardware import read
    copy = copy_of(run_all, tmp_path)
    graph = nir.read(str(copy / "model.nir"))
    net = read.load(graph)
    x, spikes, volt = handoff.read_vectors(copy / "vectors.h5", graph, net)
    layer = list(net.populations)[1]
    spikes[layer][3, 5, 7] ^= True
    spikes[layer][4, 2, 1] ^= True                    # a later sample: not the first divergence
    handoff.write_vectors(copy / "vectors.h5", graph, net, x, spikes, volt)
    cert = json.loads((copy / "certificate.json").read_text())
    cert["files_sha256"]["vectors.h5"] = handoff.sha256(copy / "vectors.h5")
    cert["versions"]["numpy"] = "0.0.1"
    cert["recheck_backends"] = ["reference"]
    (copy / "certificate.json").write_text(json.dumps(cert))
    assert main(["recheck", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "version differs: numpy: certified with 0.0.1, here 1.26.4" in out
    assert f"first divergence: sample 3, layer {layer}, neuron 7, step 5" in out and "[DIVERGED]" in out


@pytest.mark.parametrize("case", ["missing folder", "no certificate", "not json", "foreign json"])
def test_recheck_bad_input_is_one_line_and_exit_2(tmp_path, case):
    folder = tmp_path / "f"
    if case != "missing folder":
        folder.mkdir()
    if case == "not json":
        (folder / "certificate.json").write_text("{half")
    if case == "foreign json":
        (folder / "certificate.json").write_text('{"certificate": "someone else"}')
    proc = cli("recheck", str(folder))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_verify_hands_off_a_foreign_chain_to_netx(tmp_path, capsys):
    """A graph from another framework, quantised for netx (--netx): model.net is written and run by lava-dl netx,
    equal to the reference; model.nir reads back exactly; recheck replays reference, Lava and netx. Without
    --netx the refusal names the layer and why."""
    from pipeline.verify import verify
    path = tmp_path / "chain.nir"
    nir.write(path, netx_chain())
    report = verify(path, tmp_path / "v", samples=3, progress=False, netx=True, vectors=2)
    assert report["verdict"] == "IDENTICAL", report["silent_layers"]
    nx = report["backends"]["netx"]
    assert nx["identical"] == nx["compared"] == 3
    cert = json.loads((tmp_path / "v" / "certificate.json").read_text())
    assert cert["recheck_backends"] == ["reference", "lava", "netx"] and "model.net" in cert["files_sha256"]
    stored = nir.read_data(str(tmp_path / "v" / "vectors.h5"))
    assert cert["vectors"]["samples"] == 2 and stored.nodes["input"].observables["spikes"].data.shape[:2] == (2, 20)
    assert cert["backends"]["float_graph"]["against"].endswith("measured, not certified (quantisation)")
    assert main(["recheck", str(tmp_path / "v")]) == 0       # in this process (a fresh one: the round-trip test)
    out = capsys.readouterr().out
    assert "netx: 2/2 stored samples reproduced" in out, out
    plain = verify(path, tmp_path / "plain", samples=3, progress=False, target="reference")
    assert any(n.startswith("model.net not written: layer lif1: effective weights") and "--netx" in n
               for n in plain["handoff"]), plain["handoff"]


def test_any_read_network_is_written_as_nir_and_read_back_exactly():
    """export.nir_export.from_network on the hand-built foreign graphs (recurrence, delays, biases, voltage
    readouts, pooling, 1-D convolution): the file read back runs spike and voltage identical."""
    import tempfile

    from export import nir_export
    from graphs import GRAPHS, conv_graph, foreign_graph
    from hardware import nir_checks, nir_contract, read
    from hardware.backends import reference
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
