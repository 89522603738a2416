"""Untrusted input: what a received folder, a graph or a file from someone else (or a careless user) can do.

A file this tool reads can't run code, a received folder can't make recheck read outside it, and nothing can
exhaust the machine or hang it: each case here is refused in one line (exit 2) naming the file, field or
limit, or gives the stated result."""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import call, cli, random_net, refused
from datafolders import nmnist_folder
from graphs import foreign_graph, netx_chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export.nir_export import to_nir

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=int(os.environ.get("NMPIPE_FUZZ_EXAMPLES", "40")), deadline=None, database=None,
                    derandomize=not os.environ.get("NMPIPE_FUZZ_RANDOM"),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- code execution ---------------------------------------------------------------------------------------------

class _Planted:
    """A pickle that creates a file when unpickled."""
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("which", ["checkpoint", "teachers"])
@pytest.mark.parametrize("content", ["a pickle that runs code", "random bytes", "a torch file of someone else"])
def test_a_planted_distillation_checkpoint_never_runs_and_is_refused(tmp_path, capsys, which, content, quick_cache):
    import torch
    out = tmp_path / "d"
    planted = tmp_path / f".d.distill-{which}.pt"
    ran = tmp_path / "the-pickle-ran"
    if content == "a pickle that runs code":
        planted.write_bytes(pickle.dumps(_Planted(str(ran))))
    elif content == "random bytes":
        planted.write_bytes(os.urandom(2000))
    else:
        torch.save({"key": "whatever", "z": torch.zeros(3)}, planted)
    before = planted.read_bytes()
    method = "pace" if which == "checkpoint" else "herding"        # herding reads the teachers file
    refused(capsys, "distill", "--quick", "--method", method, "--ipc", "1", "--out", out,
            "--set", f"data.cache={quick_cache}",
            fragments=(str(planted), "not a distillation checkpoint of this tool"))
    assert not ran.exists() and planted.read_bytes() == before and not out.exists()


SAFE_LOADS = {  # every place that loads a file, and why it cannot run code
    "pipeline/distill/checkpoint.py": "torch.load(path, weights_only=True",
    "pipeline/data/dataset.py": "np.load(cache, allow_pickle=False)",
    "pipeline/data/distilled.py": "np.load(npz, allow_pickle=False)",
    "pipeline/data/gesture.py": "np.load(path, allow_pickle=False)",
    "pipeline/commands/verify_input.py": "np.load(path, allow_pickle=False)",
    "pipeline/data/formats/aedat4.py": "np.load(io.BytesIO(data), allow_pickle=False)",   # our child's result
}


def test_no_file_is_ever_unpickled():
    """torch.load, pickle, allow_pickle=True and np.load in the tree: only the loads above, each safe."""
    found = []
    for path in sorted(ROOT.glob("**/*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "benchmarks/")):
            continue
        for line in path.read_text().splitlines():
            code = line.split("#")[0]
            if "``" in code:            # prose in a docstring
                continue
            if re.search(r"torch\.load\(|\bpickle\b|allow_pickle=True|np\.load\(|dill|joblib\.load", code):
                found.append((rel, code.strip()))
    assert {rel for rel, _ in found} == set(SAFE_LOADS), found
    for rel, code in found:
        assert SAFE_LOADS[rel] in code, (rel, code)
        assert "allow_pickle=True" not in code and "weights_only=False" not in code


# --- recheck of a received folder: reads nothing outside it, trusts nothing it reads -----------------------------

@pytest.fixture(scope="module")
def chain_folder(tmp_path_factory) -> Path:
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    tmp = tmp_path_factory.mktemp("untrusted-chain")
    nir.write(tmp / "chain.nir", netx_chain())
    verify(tmp / "chain.nir", tmp / "v", verify_job(samples=3, target="reference", vectors=2), progress=False)
    return tmp / "v"


@pytest.fixture
def chain(chain_folder, tmp_path) -> Path:
    dest = tmp_path / "received"
    shutil.copytree(chain_folder, dest)
    return dest


def _cert(folder: Path) -> dict:
    return json.loads((folder / "certificate.json").read_text())


def _write_cert(folder: Path, cert) -> None:
    (folder / "certificate.json").write_text(json.dumps(cert) if not isinstance(cert, str) else cert)


@pytest.mark.parametrize("name", ["/etc/hostname", "../outside.txt", "sub/model.nir", "report.json", ".."])
def test_recheck_hashes_only_the_folders_own_certified_files(chain, capsys, name):
    (chain.parent / "outside.txt").write_text("outside")
    cert = _cert(chain)
    cert["files_sha256"][name] = "0" * 64
    _write_cert(chain, cert)
    line = refused(capsys, "recheck", chain, fragments=(f"files_sha256 names {name!r}",))
    assert "outside" not in line.replace("outside.txt", "")


def test_a_certified_file_that_is_a_symbolic_link_is_tampered(chain, capsys):
    (chain / "vectors.h5").rename(chain.parent / "vectors-elsewhere.h5")
    (chain / "vectors.h5").symlink_to(chain.parent / "vectors-elsewhere.h5")
    rc, out, _ = call(capsys, "recheck", chain)
    assert rc == 1 and "TAMPERED: vectors.h5: a symbolic link, not a file of the folder" in out


MALFORMED = {  # certificate field: bad value
    "files_sha256 a list": ("files_sha256", ["model.nir"]),
    "an integer digest": ("files_sha256", {"model.nir": 12345, "vectors.h5": "0" * 64}),
    "versions a list": ("versions", ["1.0"]),
    "versions null": ("versions", None),
    "recheck_backends nested": ("recheck_backends", [["reference"]]),
    "recheck_backends null": ("recheck_backends", None),
    "vectors a string": ("vectors", "32"),
    "expected missing": ("expected", None),
    "ranks negative": ("ranks", -1),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_certificate_fields_are_named_in_one_line(chain, capsys, case):
    key, value = MALFORMED[case]
    cert = _cert(chain)
    cert[key] = value
    _write_cert(chain, cert)
    refused(capsys, "recheck", chain, fragments=(str(chain / "certificate.json"),))


def test_deeply_nested_json_is_one_line(chain, capsys):
    _write_cert(chain, "[" * 100_000 + "]" * 100_000)
    refused(capsys, "recheck", chain, fragments=("nested too deeply",))


def _rehash(folder: Path) -> None:
    from pipeline.certify.certificate import sha256
    cert = _cert(folder)
    cert["files_sha256"] = {k: sha256(folder / k) for k in cert["files_sha256"]}
    _write_cert(folder, cert)


def _vectors_with(folder: Path, edit) -> None:
    """Rewrite vectors.h5 through h5py (someone else's tool), then re-hash it."""
    with h5py.File(folder / "vectors.h5", "r+") as f:
        edit(f)
    _rehash(folder)


def _replace_data(node_group, data, **kw):
    obs = node_group["observables"]["spikes"]
    del obs["data"]
    obs.create_dataset("data", data=data, **kw)


def test_an_external_link_in_the_vectors_is_refused(chain, capsys, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(chain / "vectors.h5", "r") as f:
        data = f["nodes/input/observables/spikes/data"][()]
    with h5py.File(other, "w") as g:
        g["data"] = data
    _vectors_with(chain, lambda f: (f["nodes/input/observables/spikes"].__delitem__("data"),
                                    f["nodes/input/observables/spikes"].__setitem__(
                                        "data", h5py.ExternalLink(str(other), "/data"))))
    refused(capsys, "recheck", chain, fragments=("vectors.h5", "external link", str(other)))


def test_external_raw_storage_in_the_vectors_is_refused(chain, capsys, tmp_path):
    raw = tmp_path / "raw.bin"
    with h5py.File(chain / "vectors.h5", "r") as f:
        data = f["nodes/input/observables/spikes/data"][()]
    raw.write_bytes(data.astype(np.uint8).tobytes())
    _vectors_with(chain, lambda f: (f["nodes/input/observables/spikes"].__delitem__("data"),
                                    f["nodes/input/observables/spikes"].create_dataset(
                                        "data", shape=data.shape, dtype=np.uint8,
                                        external=[(str(raw), 0, raw.stat().st_size)])))
    refused(capsys, "recheck", chain, fragments=("vectors.h5", "external files", str(raw)))


def test_a_virtual_dataset_in_the_graph_is_refused(chain, capsys, tmp_path):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as g:
        g["w"] = np.zeros((8, 12))
    layout = h5py.VirtualLayout(shape=(8, 12), dtype="f8")
    layout[:] = h5py.VirtualSource(str(src), "w", shape=(8, 12))
    with h5py.File(chain / "model.nir", "r+") as f:
        f.create_virtual_dataset("node/extra", layout)
    _rehash(chain)
    refused(capsys, "recheck", chain, fragments=("model.nir", "virtual dataset"))


def test_a_huge_declared_shape_is_refused_before_it_is_allocated(chain, capsys):
    """24 kB on disk, declaring 400,000 steps: refused from the shape, nothing allocated."""
    _vectors_with(chain, lambda f: _replace_data(f["nodes/input"], None, shape=(2, 400_000, 12), dtype=bool,
                                                 compression="gzip", chunks=(1, 4000, 12)))
    refused(capsys, "recheck", chain, fragments=("vectors.h5", "(2, 400000, 12)"))


@pytest.mark.parametrize("case", ["no samples", "string values", "a compound dtype", "values of 2", "float 0.5"])
def test_vectors_of_the_wrong_kind_are_refused(chain, capsys, case):
    def edit(f):
        g = f["nodes/input"]
        shape = g["observables/spikes/data"].shape
        data = {"no samples": np.zeros((0,) + shape[1:], bool),
                "string values": np.full(shape, b"x"),
                "a compound dtype": np.zeros(shape, dtype=[("a", "i4"), ("b", "f4")]),
                "values of 2": np.full(shape, 2, np.int64),
                "float 0.5": np.full(shape, 0.5)}[case]
        _replace_data(g, data)
    _vectors_with(chain, edit)
    refused(capsys, "recheck", chain, fragments=("vectors.h5", "node 'input'"))


# --- property: a certificate with any field changed never passes on less ---------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


@SETTINGS
@given(path=st.lists(st.sampled_from(["files_sha256", "versions", "expected", "backends", "recheck_backends",
                                      "vectors", "samples", "indices", "by", "verdict", "kind", "ranks",
                                      "model.nir", "reference", "float graph", "compared", "identical", "steps",
                                      "sample_steps", "tail_steps", "samples_compared", "diverged_samples",
                                      "certifies"]), min_size=1, max_size=3),
       value=JSON | st.integers(0, 30))
def test_any_change_to_a_certificate_is_refused_or_replays_everything_it_names(chain_folder, tmp_path_factory,
                                                                               capsys, path, value):
    """Whatever is changed: one line (2), TAMPERED (1), or a replay in which every backend named replayed every
    stored sample; never a traceback, never exit 0 on fewer samples than stored."""
    folder = tmp_path_factory.mktemp("prop") / "r"
    shutil.copytree(chain_folder, folder)
    cert = _cert(folder)
    node = cert
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node or not isinstance(node[key], dict):
            break
        node = node[key]
    else:
        node[path[-1]] = value
    _write_cert(folder, cert)
    rc, out, err = call(capsys, "recheck", folder, "--json")
    assert "Traceback" not in err and rc in (0, 1, 2, 3), (rc, err[-2000:])
    if rc == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        return
    if rc in (0, 3):
        result = json.loads(out[out.index("\n{") + 1:])
        n, vec = cert["samples_compared"], cert["vectors"]            # the counts it states agree
        assert all(b["identical"] <= b["compared"] <= n for b in cert["backends"].values()), cert["backends"]
        assert vec["steps"] == vec["sample_steps"] + vec["tail_steps"] and vec["samples"] <= n, vec
        stored = cert["vectors"]["samples"]
        assert result["replay"]["samples"] == stored
        assert all(b["compared"] == stored for b in result["replay"]["backends"].values())
        assert set(result["replay"]["backends"]) == set(cert["recheck_backends"])


# --- exhausting the machine, hanging ---------------------------------------------------------------------------

@pytest.mark.slow
def test_more_workers_than_cores_are_capped_and_said(tmp_path):
    g = tmp_path / "chain.nir"
    nir.write(g, netx_chain())
    proc = cli("verify", str(g), "--workers", "64", "--samples", "3", "--out", str(tmp_path / "v"), timeout=300)
    cores = len(os.sched_getaffinity(0))
    assert proc.returncode == 0, proc.stderr[-2000:]
    if cores < 64:
        assert f"note: running {cores} Lava worker" in proc.stderr and "instead of the 64 asked for" in proc.stderr


@pytest.mark.timeout(60)
def test_a_fifo_given_as_the_graph_is_refused_without_waiting(tmp_path, capsys):
    fifo = tmp_path / "graph.nir"
    os.mkfifo(fifo)
    refused(capsys, "verify", fifo, "--out", tmp_path / "v", fragments=(str(fifo), "not a regular file"))
    refused(capsys, "check", fifo, fragments=(str(fifo), "not a regular file"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("skip", [False, True])
def test_a_fifo_in_a_class_folder_is_named_or_skipped(tmp_path, capsys, skip):
    root = nmnist_folder(tmp_path / "data", per_class=(1, 1))
    os.mkfifo(root / "Train" / "3" / "pipe.bin")
    args = ["data", "--name", "nmnist", "--root", root, "--set", f"data.cache={tmp_path / 'c'}"]
    if not skip:
        refused(capsys, *args, fragments=("pipe.bin", "not a regular file"))
        return
    rc, out, err = call(capsys, *args, "--skip-bad")
    summary = json.loads(out)
    assert rc == 0 and any("pipe.bin" in s["file"] for s in summary["train"]["skipped"])


@pytest.mark.timeout(60)
def test_a_huge_garbage_event_file_fails_fast(tmp_path, capsys):
    root = nmnist_folder(tmp_path / "data", per_class=(1, 1))
    big = root / "Train" / "3" / "big.bin"
    with open(big, "wb") as f:
        f.truncate(200 << 20)                   # 200 MB, sparse: nothing to parse is read
    refused(capsys, "data", "--name", "nmnist", "--root", root, "--set", f"data.cache={tmp_path / 'c'}",
            fragments=(str(big), "209,715,200 bytes, larger than any recording of this dataset"))


def test_an_unreadable_event_file_is_named_or_skipped_and_listed(tmp_path, capsys, monkeypatch):
    """A file the process may not open (as root nothing is unreadable, so the refusal is simulated)."""
    from pipeline.data import dataset
    root = nmnist_folder(tmp_path / "data", per_class=(1, 1))
    locked = sorted((root / "Train" / "3").glob("*.bin"))[0]

    def guarded_open(path, *a, **kw):
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return open(path, *a, **kw)
    monkeypatch.setattr(dataset, "open", guarded_open, raising=False)
    args = ["data", "--name", "nmnist", "--root", root, "--set", f"data.cache={tmp_path / 'c'}"]
    refused(capsys, *args, fragments=(str(locked), "cannot be read (Permission denied)"))
    rc, out, err = call(capsys, *args, "--skip-bad")
    assert rc == 0 and [s["file"] for s in json.loads(out)["train"]["skipped"]] == [str(locked)]


@pytest.mark.parametrize("args, fragment", [
    (("run", "--set", "model.hidden=1e30"), "model.hidden"),
    (("run", "--set", "model.hidden=1000000000"), "model.hidden"),
    (("run", "--set", "train.seed=1e30"), "train.seed"),
    (("run", "--set", "train.seed=-1"), "train.seed"),
    (("run", "--set", "data.max_bins=100000"), "data.max_bins"),
    (("run", "--samples", "0"), "--samples 0"),
    (("verify", "G", "--steps", "1000000000"), "--steps"),
    (("verify", "G", "--samples", "1000000000"), "--samples"),
    (("verify", "G", "--seed", "-1"), "--seed"),
    (("verify", "G", "--steps", "1e9"), "--steps"),
])
def test_numbers_out_of_range_are_one_line_naming_the_option(tmp_path, capsys, args, fragment):
    g = tmp_path / "g.nir"
    nir.write(g, foreign_graph())
    args = tuple(str(g) if a == "G" else a for a in args)
    line = refused(capsys, *args, "--out", tmp_path / "o", fragments=(fragment,))
    assert not (tmp_path / "o").exists(), line


NUMERIC_KEYS = ["data.n_bins", "data.max_bins", "data.n_train", "data.seed", "model.hidden", "model.du",
                "model.vth_out", "train.epochs", "train.batch_size", "train.seed", "train.k", "verify.workers",
                "verify.vectors", "distill.ipc", "distill.probes", "select.warmup_epochs", "train.lr",
                "select.ratio", "data.val_fraction"]


@SETTINGS
@given(key=st.sampled_from(NUMERIC_KEYS), value=st.one_of(
    st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e30", "1e9", "-1", "0", "nan", "inf", "", "0x10", "1_000"])))
def test_any_numeric_setting_is_accepted_within_its_bound_or_refused_naming_the_key(key, value):
    """A value is either within the key's stated range (and the configuration is usable), or refused with a
    ConfigError naming the key; nothing else escapes (no OverflowError, no ValueError, no MemoryError)."""
    from pipeline.config import ConfigError, RunConfig, apply_overrides
    try:
        cfg = apply_overrides(RunConfig(), [f"{key}={value}"])
    except ConfigError as e:
        assert key in str(e) or key.split(".")[0] in str(e), str(e)
        return
    section, name = key.split(".")
    got = getattr(getattr(cfg, section), name)
    if isinstance(got, float):          # a learning rate of 1e30 is accepted: training stops when it diverges
        assert np.isfinite(got), (key, got)
    else:
        assert 0 <= got <= 10_000_000, (key, got)


# --- --out: mount points, full disks, concurrent overwrites, stale partial folders -------------------------------

def test_an_out_that_is_a_mount_point_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    mount = tmp_path / "mnt"
    mount.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real(p))
    refused(capsys, "run", "--quick", "--target", "reference", "--out", mount, fragments=(str(mount), "mount point"))


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_old_folder(tmp_path, capsys, monkeypatch, quick_cache):
    from pipeline.runfolder import staged
    out = tmp_path / "r"
    with staged(out, "run") as stage:
        (stage / "report.json").write_text('{"old": true}')
    before = (out / "report.json").read_text()
    import pipeline.commands.run as run_command

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(run_command, "atomic_write", full)
    refused(capsys, "run", "--quick", "--target", "reference", "--overwrite", "--out", out,
            "--set", f"data.cache={quick_cache}", fragments=(str(out), "no space left", "earlier folder"))
    assert (out / "report.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_concurrent_overwrite_loses_cleanly_and_keeps_its_results(tmp_path):
    """Two --overwrite runs of the same folder: the one that finishes second finds another run's folder there,
    so it exits 2 and keeps its results beside, instead of replacing what the other wrote."""
    from pipeline.runfolder import MARKER, OutputError, staged
    out = tmp_path / "r"
    with staged(out, "run") as stage:
        (stage / "report.json").write_text("first")
    with pytest.raises(OutputError, match="another run wrote it while this one worked") as e:
        with staged(out, "run", overwrite=True) as mine:
            (mine / "report.json").write_text("mine")
            with staged(out, "run", overwrite=True) as theirs:       # finishes first
                (theirs / "report.json").write_text("theirs")
    assert (out / "report.json").read_text() == "theirs"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("r.kept-")]
    assert len(kept) == 1 and (kept[0] / "report.json").read_text() == "mine" and str(kept[0]) in str(e.value)
    assert (kept[0] / MARKER).exists()


def test_a_stale_partial_folder_loses_only_our_outputs(tmp_path):
    from pipeline import runfolder
    out = tmp_path / "r"
    stale = tmp_path / ".r.partial-dead"
    stale.mkdir()
    (stale / runfolder.MARKER).write_text(json.dumps({"tool": "nmpipe", "kind": "run", "files": [],
                                                       "owner": {"pid": 2**22 + 7, "start": "1",
                                                                 "host": __import__("socket").gethostname()}}))
    (stale / "model.nir").write_text("ours")
    (stale / "report.json.abc123.tmp").write_text("ours, half written")
    (stale / "my-notes.txt").write_text("a user's")
    runfolder.clean_stale(out)
    assert sorted(p.name for p in stale.iterdir()) == [runfolder.MARKER, "my-notes.txt"]
    (stale / "my-notes.txt").unlink()
    runfolder.clean_stale(out)
    assert not stale.exists()


# --- smaller, same spirit -------------------------------------------------------------------------------------

def test_two_nodes_naming_one_layer_is_a_contract_error(tmp_path, capsys):
    g = to_nir(random_net(np.random.default_rng(0), sizes=(72, 40, 5), exps=(1, 0)), 1e-3, 8)
    g.nodes["lif2"].metadata["layer"] = g.nodes["lif1"].metadata["layer"]
    nir.write(tmp_path / "g.nir", g)
    refused(capsys, "check", tmp_path / "g.nir", fragments=("nodes 'lif1' and 'lif2' both name layer 'lif1'",))


def test_complex_weights_are_refused_not_cut(tmp_path, capsys):
    g = foreign_graph()
    g.nodes["fc"].weight = g.nodes["fc"].weight + 1j
    nir.write(tmp_path / "g.nir", g)
    refused(capsys, "verify", tmp_path / "g.nir", "--target", "reference", "--out", tmp_path / "v",
            fragments=("node 'fc' (Affine): weight holds complex values",))


def test_verify_says_loihi_2s_verdict_on_a_graph_that_does_not_fit(tmp_path, capsys):
    g = tmp_path / "g.nir"
    nir.write(g, foreign_graph())
    rc, out, _ = call(capsys, "verify", g, "--target", "reference", "--steps", "1100", "--samples", "2",
                      "--out", tmp_path / "v")
    assert rc == 0 and "Loihi 2: does NOT fit: graph: n_steps = 1100 violates configured maximum of 1024" in out
    assert "does NOT fit" in _cert(tmp_path / "v")["loihi2"]


def test_which_dt_won_is_said(tmp_path, capsys):
    g = foreign_graph()                            # metadata dt = 1 ms; sinabs works in steps (dt = 1)
    nir.write(tmp_path / "g.nir", g)
    rc, out, _ = call(capsys, "verify", tmp_path / "g.nir", "--source", "sinabs", "--target", "reference",
                      "--out", tmp_path / "v")
    assert "note: dt = 0.001 s from the graph's metadata, not the sinabs preset's 1 (give --dt to choose)" in out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_lava_or_multiprocessing_folder_outlives_a_command(tmp_path):
    """lava-* and pymp-* go into the process's own scratch folder, which goes with it: after a normal exit, and
    after a SIGKILL (the next command sweeps it)."""
    import signal
    import tempfile
    import time
    tmp = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))        # short: sockets live in there
    env = {**os.environ, "TMPDIR": str(tmp)}
    g = tmp_path / "chain.nir"
    nir.write(g, netx_chain())
    proc = cli("verify", str(g), "--samples", "3", "--out", str(tmp_path / "v"), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp.iterdir()) == []
    p = subprocess.Popen([sys.executable, "-m", "pipeline", "verify", str(g), "--samples", "200", "--workers", "1",
                          "--out", str(tmp_path / "w")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    for _ in range(600):                            # until Lava is running in a worker
        if list(tmp.glob("nmpipe-*/lava-*")):
            break
        time.sleep(0.1)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(2)                                   # the workers end with their parent
    assert list(tmp.glob("nmpipe-*")), "the killed run left its scratch folder"
    proc = cli("check", str(g), env=env)
    assert proc.returncode == 0 and list(tmp.iterdir()) == [], list(tmp.rglob("*"))
    tmp.rmdir()


# --- property: HDF5 files that reach outside themselves or declare too much ------------------------------------

FEATURES = st.sampled_from(["external link", "soft link", "external storage", "virtual dataset", "huge shape",
                            "odd dtype", "plain"])


@SETTINGS
@given(feature=FEATURES, depth=st.integers(0, 3), size=st.integers(1, 40),
       dtype=st.sampled_from(["bool", "int8", "float64", "S3", "compound"]))
def test_any_hdf5_feature_that_reaches_outside_or_declares_too_much_is_refused(tmp_path_factory, feature, depth,
                                                                              size, dtype):
    """h5safe.check on generated files: a link, external storage or a virtual dataset anywhere in the tree, or
    more declared bytes than the limit, is refused naming the file and the object; a plain file of any dtype
    passes it (and the vectors reader then refuses anything that is not booleans of the declared shape)."""
    from hardware import h5safe
    from hardware.errors import GraphError
    tmp = tmp_path_factory.mktemp("h5")
    path, other = tmp / "f.h5", tmp / "other.h5"
    with h5py.File(other, "w") as g:
        g["data"] = np.zeros(size)
    types = {"bool": bool, "int8": np.int8, "float64": np.float64, "S3": "S3",
             "compound": np.dtype([("a", "i4"), ("b", "f4")])}
    with h5py.File(path, "w") as f:
        group = f
        for k in range(depth):
            group = group.create_group(f"g{k}")
        group.create_dataset("x", data=np.zeros(size, dtype=types[dtype]))
        if feature == "external link":
            group["y"] = h5py.ExternalLink(str(other), "/data")
        elif feature == "soft link":
            group["y"] = h5py.SoftLink("/g0" if depth else "/x")
        elif feature == "external storage":
            (tmp / "raw.bin").write_bytes(bytes(size))
            group.create_dataset("y", shape=(size,), dtype=np.uint8, external=[(str(tmp / "raw.bin"), 0, size)])
        elif feature == "virtual dataset":
            layout = h5py.VirtualLayout(shape=(size,), dtype="f8")
            layout[:] = h5py.VirtualSource(str(other), "data", shape=(size,))
            group.create_virtual_dataset("y", layout)
        elif feature == "huge shape":
            group.create_dataset("y", shape=(size, 1 << 20, 1 << 11), dtype=np.int8, chunks=(1, 1024, 64),
                                 compression="gzip")
    if feature == "plain":
        h5safe.check(path)
        return
    with pytest.raises(GraphError) as e:
        h5safe.check(path)
    text = str(e.value)
    assert "\n" not in text and text.startswith(str(path))
    assert ("bytes in all" in text) if feature == "huge shape" else ("/y" in text or "y is" in text), text
