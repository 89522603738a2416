"""torchrun with 2 gloo processes: the same model as one process, up to floating-point reduction order."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def run(out: Path, cache: Path, ranks: int, *overrides: str, target: str = "reference") -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks)] if ranks > 1 else []
    args = [sys.executable, *launcher, "-m", "pipeline", "run", "--quick", "--target", target, "--out", str(out),
            "--set", f"data.cache={cache}", "--set", "train.epochs=3"]
    for o in overrides:
        args += ["--set", o]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("overrides", [(), ("train.method=sltt-k", "select.method=sadp")], ids=["bptt", "sltt-k+sadp"])
def test_two_process_training_matches_one_process(tmp_path, overrides):
    cache = tmp_path / "cache"
    single = run(tmp_path / "single", cache, 1, *overrides)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run(tmp_path / "ddp", cache, 2, *overrides)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert not any(p.name.startswith(".ddp.partial") for p in tmp_path.iterdir())   # rank 1 wrote nothing
    a, b = (torch.load(tmp_path / name / "model.pt") for name in ("single", "ddp"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), (key, (a[key] - b[key]).abs().max())
    ra, rb = (json.loads((tmp_path / name / "report.json").read_text()) for name in ("single", "ddp"))
    assert rb["training"]["ranks"] == 2 and ra["training"]["ranks"] == 1
    # verification was split across the ranks too (each simulated its share, rank 0 gathered)
    ca, cb = (json.loads((tmp_path / name / "certificate.json").read_text()) for name in ("single", "ddp"))
    assert ca["ranks"] == 1 and cb["ranks"] == 2
    for cert, report in ((ca, ra), (cb, rb)):
        ref = cert["backends"]["reference"]
        assert ref["compared"] == ref["identical"] == 40 and cert["verdict"] == report["verdict"]
    assert ra["training"]["epoch_examples"] == rb["training"]["epoch_examples"]      # same selections
    # weights agree to 1e-5; a mantissa right at a rounding boundary could still flip: allow 2 of 40 samples
    assert abs(ra["accuracy"]["golden"] - rb["accuracy"]["golden"]) <= 2 / 40


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_process_distillation_splits_classes_and_matches_one_process(tmp_path):
    import numpy as np
    frames = {}
    for ranks in (1, 2):
        launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks)] if ranks > 1 else []
        out = tmp_path / f"d{ranks}"
        proc = subprocess.run([sys.executable, *launcher, "-m", "pipeline", "distill", "--quick", "--ipc", "2",
                               "--out", str(out), "--set", f"data.cache={tmp_path / 'cache'}",
                               "--set", "distill.iterations=6", "--set", "distill.init=random"],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        # a random start: this compares the split of classes; a herding start would also compare the teacher's
        # float reduction order under DDP, which can flip a near-tie of the herding choice
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("distilled 20 samples") == 1           # rank 0 alone reports and writes
        frames[ranks] = np.load(out / "distilled.npz")["frames"]
    # classes 1, 3, 5, ... were optimised on rank 1 and gathered; teachers differ by float reduction order only
    assert (frames[1] == frames[2]).mean() > 0.999
    assert not list(tmp_path.glob(".d2.distill-*"))                     # checkpoints removed when done


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_process_verification_gives_the_same_certificate_as_one_process(tmp_path):
    """verify under torchrun: each rank simulates its share of the samples on Lava and netx, rank 0 gathers and
    writes; the certificate's verdicts and the stored vectors equal one process's, and it records the ranks."""
    import nir
    import numpy as np
    from graphs import netx_chain
    graph = tmp_path / "chain.nir"
    nir.write(graph, netx_chain())
    certs, vectors = {}, {}
    for ranks in (1, 2):
        launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks)] if ranks > 1 else []
        out = tmp_path / f"v{ranks}"
        proc = subprocess.run([sys.executable, *launcher, "-m", "pipeline", "verify", str(graph), "--netx",
                               "--samples", "5", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        assert proc.stdout.count("re-check anywhere") == 1              # rank 0 alone reports and writes
        certs[ranks] = json.loads((out / "certificate.json").read_text())
        data = nir.read_data(str(out / "vectors.h5"))
        vectors[ranks] = {k: v.observables["spikes"].data for k, v in data.nodes.items()}
    assert certs[1]["ranks"] == 1 and certs[2]["ranks"] == 2
    assert certs[1]["verdict"] == certs[2]["verdict"] == "IDENTICAL"
    keys = ("certifies", "against", "compared", "identical", "verdict", "first_divergence")
    # (the tails compared differ: each rank's Lava network ends with a sample whose tail it does not compute)
    assert {b: [r[k] for k in keys] for b, r in certs[1]["backends"].items()} == \
        {b: [r[k] for k in keys] for b, r in certs[2]["backends"].items()}
    assert certs[2]["backends"]["netx"]["compared"] == certs[2]["backends"]["lava"]["identical"] == 5
    assert certs[1]["layers"] == certs[2]["layers"]
    assert certs[1]["files_sha256"].keys() == certs[2]["files_sha256"].keys()
    assert vectors[1].keys() == vectors[2].keys()
    assert all(np.array_equal(vectors[1][k], vectors[2][k]) for k in vectors[1])
    assert not list(tmp_path.glob(".v2.partial-*"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_runs_verification_on_lava_shared_across_ranks_equals_one_process(tmp_path):
    """run under torchrun with --target lava: each rank simulates its share of the test samples on the reference
    and on Lava, rank 0 gathers them (with what each computed, tails included). Per layer and backend, the spikes
    gathered equal one process's verification of the same model.nir on the same samples."""
    import nir
    from conftest import verified

    from hardware.graph import read
    from hardware.graph.ir import input_spikes
    from pipeline.config import RunConfig, apply_overrides
    from pipeline.data import registry, sets
    cache = tmp_path / "cache"
    proc = run(tmp_path / "ddp", cache, 2, target="lava")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "ddp" / "report.json").read_text())
    cert = json.loads((tmp_path / "ddp" / "certificate.json").read_text())
    assert cert["ranks"] == 2 and report["verdict"] == "IDENTICAL"
    net = read.load(nir.read(str(tmp_path / "ddp" / "model.nir")))
    from pipeline.config import QUICK
    cfg = registry.resolve(apply_overrides(RunConfig(), [f"{k}={v}" for k, v in QUICK.items()]
                                           + [f"data.cache={cache}"]))
    x = input_spikes(net, sets.load(cfg.data).test.frames[:40])
    one = verified(net, x, backends=("reference", "lava"), chunk=10)   # as each rank: 20 samples, 2 workers
    for b in ("reference", "lava"):
        got = report["backends"][b]
        assert got["identical"] == got["compared"] == 40
        assert got["tail_positions_compared"] == one.backend(b).tail_positions
        assert [got["layers"][L.layer]["backend_spikes"] for L in one.backend(b).layers] == \
            [L.backend_spikes for L in one.backend(b).layers]
    assert report["backends"]["lava"]["tail_positions_compared"] > 0
    assert [L["spikes"] for L in report["layers"]] == [L.spikes for L in one.layers]
