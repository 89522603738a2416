"""The newest surfaces under a user's mistakes (issue 36): numbers a user would trust (verify --data's draw and
decoding, a readout of the wrong size, certificate counts, an untrained network), processes and files (synthesis
killed or interrupted, ``~`` in --out), SHD files that crash or mislead, options ignored without a word, work
done before a refusal, and one name per layer. Most cases run the command in-process (``pipeline.cli.main``)."""
from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import call, refused, session_processes

from pipeline.commands import task
from pipeline.data import speech
from pipeline.data.formats import shd

ROOT = Path(__file__).resolve().parents[1]
DT = 0.02                   # 50 steps of 20 ms: SHD's default framing


def shd_files(root: Path, per_class=(2, 3), keys=speech.CLASSES, test_labels=None, edit=None) -> Path:
    """shd_train.h5 and shd_test.h5 with each split ordered by class (blocks, as the spoken digits' test split
    is), 300 random spikes per recording over 0.9 s; ``edit(f)`` changes the test file through h5py."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("shd_train.h5", per_class[0]), ("shd_test.h5", per_class[1])):
        labels = np.repeat(np.arange(20), n) if test_labels is None or name == "shd_train.h5" else test_labels
        times = [np.sort(rng.random(300) * 0.9).astype(np.float32) for _ in labels]
        units = [rng.integers(0, 700, 300).astype(np.uint16) for _ in labels]
        shd.write(root / name, shd.Recordings(times, units, labels, np.zeros(len(labels), int), keys))
    if edit:
        with h5py.File(root / "shd_test.h5", "r+") as f:
            edit(f)
    return root


def audio_graph(path: Path, n_out: int = 20, inputs: int = 700, weight: float = 0.0) -> Path:
    """Input(700) -> Affine -> LIF(n_out): weight 0 never spikes."""
    nir.write(path, nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([inputs])}),
               "fc": nir.Affine(weight=np.full((n_out, inputs), weight), bias=np.zeros(n_out)),
               "lif": nir.LIF(tau=np.full(n_out, 5e-3), r=np.ones(n_out), v_leak=np.zeros(n_out),
                              v_threshold=np.full(n_out, 1.0), v_reset=np.zeros(n_out)),
               "output": nir.Output(output_type={"output": np.array([n_out])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    return path


def verify_shd(capsys, tmp_path, graph: Path, root: Path, *extra, out="v"):
    return call(capsys, "verify", graph, "--dt", DT, "--target", "reference", "--data", "shd", "--root", root,
                "--out", tmp_path / out, "--set", f"data.cache={tmp_path / 'cache'}", *extra)


# --- 1, 2. verify --data: a representative draw, undecided readouts, the readout's size -------------------------

def test_the_draw_is_stratified_by_class_seeded_and_in_order():
    labels = np.repeat(np.arange(20), 54)                    # the spoken digits' test split: blocks by class
    for n, each in ((40, 2), (20, 1), (60, 3)):
        idx = task.stratified(labels, n, seed=0)
        assert len(idx) == n and np.all(np.diff(idx) > 0)
        assert np.array_equal(np.bincount(labels[idx], minlength=20), np.full(20, each))
    assert not np.array_equal(task.stratified(labels, 40, 0), task.stratified(labels, 40, 1))
    assert np.array_equal(task.stratified(labels, 40, 3), task.stratified(labels, 40, 3))
    skewed = np.repeat([0, 1], [90, 10])                     # proportional: 18 and 2 of 20
    assert np.array_equal(np.bincount(skewed[task.stratified(skewed, 20, 0)]), [18, 2])


def test_a_silent_readout_scores_no_accuracy_and_the_certificate_names_the_undecided(capsys, tmp_path):
    """A test split ordered by class, a readout that never spikes: the first 40 recordings would be 14 classes
    and argmax of zeros class 0 (above chance); drawn by class, every sample is undecided and counted wrong."""
    root = shd_files(tmp_path / "shd")
    rc, out, err = verify_shd(capsys, tmp_path, audio_graph(tmp_path / "g.nir"), root, "--samples", "40")
    assert rc == 3, err[-2000:]                                          # SILENT
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    t = report["task"]
    assert t["samples"] == 40 and t["classes_present"] == 20 and t["chance"] == 1 / 20
    assert t["task_accuracy"]["reference"] == 0.0 and t["undecided"]["reference"] == 40
    assert len(set(t["indices"])) == 40 and "drawn stratified by class (seed 0)" in t["data"]
    matrix = np.array(t["confusion"]["matrix"])
    assert matrix.shape == (20, 21) and matrix[:, 20].sum() == 40             # the last column: undecided
    cert = json.loads((tmp_path / "v" / "certificate.json").read_text())
    assert cert["task_samples"] == 40 and cert["task_classes"] == {"present": 20, "of": 20, "chance": 0.05}
    assert cert["task_undecided"]["count"]["reference"] == 40
    assert sorted(cert["task_undecided"]["recordings"]) == sorted(t["indices"])
    assert "integer reference (model.nir)           0.0000  (40 of 40 undecided, counted wrong)" in out
    assert "chance: 0.0500 (1 in 20 classes; the samples cover 20 of them)" in out


def test_a_tie_for_the_most_spikes_is_undecided():
    from hardware.graph import read
    net = read.load(_tiny_graph(), dt=DT)
    spikes = {"lif": np.zeros((3, 4, 3), bool)}
    spikes["lif"][0, :2, 1] = True                           # sample 0: class 1 by 2 spikes
    spikes["lif"][1, 0, [0, 2]] = True                       # sample 1: a tie between 0 and 2
    pred, how = task.decode(net, spikes, {}, 4)              # sample 2: no spike
    assert pred.tolist() == [1, -1, -1] and "undecided" in how


def _tiny_graph() -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "fc": nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3)),
               "lif": nir.LIF(tau=np.full(3, 5e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                              v_reset=np.zeros(3)),
               "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


@pytest.mark.parametrize("n_out", [3, 25])
def test_a_readout_of_another_size_than_the_classes_is_refused(capsys, tmp_path, n_out):
    root = shd_files(tmp_path / "shd")
    rc, out, err = verify_shd(capsys, tmp_path, audio_graph(tmp_path / "g.nir", n_out), root)
    assert rc == 2 and err.strip().splitlines()[-1] == (
        f"error: the graph's readout 'lif' has {n_out} neurons, but shd has 20 classes: decoding takes one readout "
        "neuron per class, in the dataset's class order"), err
    assert not (tmp_path / "v").exists() and not (tmp_path / "cache").exists()     # refused before reading


# --- 3. certificate counts --------------------------------------------------------------------------------------

@pytest.fixture
def verified_folder(tmp_path) -> Path:
    from graphs import netx_chain

    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    nir.write(tmp_path / "chain.nir", netx_chain())
    verify(tmp_path / "chain.nir", tmp_path / "v", verify_job(samples=3, target="reference", vectors=2), progress=False)
    return tmp_path / "v"


def _edit_cert(folder: Path, edit) -> None:
    cert = json.loads((folder / "certificate.json").read_text())
    edit(cert)
    (folder / "certificate.json").write_text(json.dumps(cert))


@pytest.mark.parametrize("case, line", [
    ("compared beyond the samples", "backends.float graph.compared is 1,000,000, more than the 3 samples"),
    ("steps that are not sample + tail", "vectors.steps is 5, but sample_steps 20 + tail_steps 1 is 21"),
    ("identical beyond compared", "backends.float graph.identical is 4, more than its compared 3"),
    ("a verdict the counts do not give", "verdict is IDENTICAL, but the backends' counts give REFERENCE ONLY"),
    ("sample_steps model.nir does not run", "vectors.sample_steps is 7, but model.nir runs 20 steps per sample"),
    ("a layer of other neurons", "layers: lif1 is node 'lif1' of 9 neurons; model.nir has node 'lif1' of 8"),
])
def test_a_certificate_whose_counts_contradict_each_other_or_the_folder_rechecks_tampered(verified_folder, capsys,
                                                                                           case, line):
    def edit(c):
        if case == "compared beyond the samples":
            c["backends"]["float graph"]["compared"] = 1_000_000
        elif case == "steps that are not sample + tail":
            c["vectors"]["steps"] = 5
        elif case == "identical beyond compared":
            c["backends"]["float graph"]["identical"] = 4
        elif case == "a verdict the counts do not give":
            c["verdict"] = "IDENTICAL"
        elif case == "sample_steps model.nir does not run":
            c["vectors"]["sample_steps"], c["vectors"]["steps"] = 7, 7 + c["vectors"]["tail_steps"]
        else:
            next(r for r in c["layers"] if r["layer"] == "lif1")["neurons"] = 9
    _edit_cert(verified_folder, edit)
    rc, out, err = call(capsys, "recheck", verified_folder)
    assert rc == 1 and f"TAMPERED: certificate.json: {line}" in out, (rc, out, err)
    assert "verdict" not in out.splitlines()[-1] or "TAMPERED" in out.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lava_names_the_samples_whose_tail_it_did_not_compute():
    """Batched Lava computes a sample's tail in the next sample's first steps: the last of each chunk has none."""
    from conftest import random_net, verified

    from export.nir_export import to_nir
    from hardware.graph import read
    from hardware.graph.ir import input_spikes
    rng = np.random.default_rng(7)
    net = read.load(to_nir(random_net(rng), 1e-3, 8))
    frames = (rng.random((12, 8, 2, 6, 6)) < 0.4).astype(np.uint8)
    lv = verified(net, input_spikes(net, frames), chunk=4).backend("lava")
    assert lv.identical == lv.compared == 12 and lv.tail_samples == 9
    line = next(x for x in lv.not_computed if x.startswith("tails: "))
    assert "samples 3, 7, 11 (3 of 12, the last of each batch" in line and "lif1 0 of 2" in line
    from pipeline.report.summary import backend_line
    assert "past the end of 9 of the 12 samples included" in backend_line(lv)


# --- 4. an untrained network ------------------------------------------------------------------------------------

def test_zero_epochs_are_refused(capsys, tmp_path):
    refused(capsys, "run", "--quick", "--set", "train.epochs=0", "--out", tmp_path / "r",
            fragments=("train.epochs", ">= 1", "never trained"))
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_run_certificate_states_the_training_the_classes_and_the_undecided(quick_run_all):
    folder, _ = quick_run_all
    cert = json.loads((folder / "certificate.json").read_text())
    assert cert["training"]["epochs"] == 1 and cert["training"]["trainer"] == "bptt"
    assert cert["samples_compared"] == cert["test_samples"] == 40 and cert["classes"]["of"] == 10
    assert cert["undecided"]["samples"] >= 0 and "lowest index" in cert["undecided"]["rule"]


# --- 5, 6. synthesis killed or interrupted ----------------------------------------------------------------------

def _synthesising(tmp_path: Path, workers_up: bool = True) -> subprocess.Popen:
    """``run`` on the spoken digits with an empty cache, once its two synthesis workers are up (else as soon as
    synthesis begins: the workers are starting)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--quick", "--target", "reference", "--out",
                             str(tmp_path / "run"), "--set", "data.name=spoken_digits", "--set",
                             f"data.cache={tmp_path / 'cache'}"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(2400):
        if list((tmp_path / "cache").glob(".spoken-digits-*")) and (not workers_up or len(session_processes(proc.pid)) >= 4):
            break                               # the run, its resource tracker and two workers
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"synthesis did not start: {proc.communicate()[1][-2000:]}")
    if workers_up:
        time.sleep(2)                           # the workers are synthesising
    return proc


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_during_synthesis_leaves_no_process_and_the_next_call_sweeps_the_partial_folder(tmp_path):
    from pipeline.data import building
    proc = _synthesising(tmp_path)
    started = session_processes(proc.pid)
    proc.kill()
    proc.communicate(timeout=60)
    time.sleep(10)
    assert session_processes(proc.pid) == [], f"{len(started)} processes then, alive 10 s later: {session_processes(proc.pid)}"
    partial = list((tmp_path / "cache").glob(".spoken-digits-*"))
    assert len(partial) == 1                                     # SIGKILL runs no clean-up ...
    pattern = ".spoken-digits-v*"
    assert building.sweep(tmp_path / "cache", pattern) == partial and not partial[0].exists()   # ... the next does
    (tmp_path / "cache" / ".spoken-digits-v6-seed0-ch64.other").mkdir()       # not marked: never ours to remove
    assert building.sweep(tmp_path / "cache", pattern) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers_up", [False, True])
def test_ctrl_c_during_synthesis_is_one_line_and_leaves_nothing(tmp_path, workers_up):
    proc = _synthesising(tmp_path, workers_up)
    os.killpg(proc.pid, signal.SIGINT)          # what the terminal sends to its foreground process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err \
        and "Exception ignored" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    time.sleep(2)
    assert session_processes(proc.pid) == []
    assert not list((tmp_path / "cache").glob(".spoken-digits-*")) and not (tmp_path / "run").exists()


# --- 7. ~ in --out ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["separate", "equals"])
def test_a_tilde_in_out_is_the_home_folder_never_a_folder_named_tilde(capsys, tmp_path, monkeypatch, form):
    from graphs import foreign_graph
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    nir.write(work / "g.nir", foreign_graph())
    out = ["--out", "~/x"] if form == "separate" else ["--out=~/x"]
    rc, stdout, err = call(capsys, "verify", "g.nir", "--target", "reference", "--samples", "2", *out)
    assert rc == 0, err[-2000:]
    assert not (work / "~").exists() and (home / "x" / "certificate.json").is_file()
    assert f"recheck {home / 'x'}" in stdout


# --- 8, 9, 10, 11. SHD files and options ------------------------------------------------------------------------

def _set_recording(key: str, i: int, change):
    def edit(f):
        d = f[key]
        a = d[i].copy()
        change(a)
        d[i] = a
    return edit


def _replace(key: str, values, dtype):
    def edit(f):
        del f[key]
        d = f.create_dataset(key, (len(values),), dtype=h5py.vlen_dtype(dtype))
        for i, v in enumerate(values):
            d[i] = v
    return edit


def _labels_2d(f):
    labels = f["labels"][()]
    del f["labels"]
    f["labels"] = np.stack([labels, labels], 1)


SHD_CASES = {   # name: (files, what the one line says)
    "a label beyond SHD's 20 classes (extra/keys names 30)": (
        dict(keys=speech.CLASSES + tuple(f"extra{i}" for i in range(10)), test_labels=np.r_[np.arange(20), 25]),
        "shd_test.h5#20: label 25; SHD has 20 classes, labels 0..19"),
    "a spike time of 1e30 s": (dict(edit=_set_recording("spikes/times", 3, lambda a: a.__setitem__(-1, 1e30))),
                               "shd_test.h5#3: spike 299 at time 1e+30 s; times must be finite seconds in [0, 3600]"),
    "integer spike times": (dict(edit=_replace("spikes/times", [np.arange(300)] * 60, np.int64)),
                            "shd_test.h5#0: spike times are int64 values; SHD stores times in seconds as "
                            "floating-point numbers"),
    "2-D labels": (dict(edit=_labels_2d), "shd_test.h5: labels has shape (60, 2); SHD stores one value per recording"),
    "a negative unit": (dict(edit=_replace("spikes/units", [np.r_[np.arange(299), -3]] + [np.arange(300)] * 59,
                                           np.int16)),
                        "shd_test.h5#0: spike 299 on unit -3; a unit is a channel number, never negative"),
    "a unit beyond SHD's 700 channels": (dict(edit=_set_recording("spikes/units", 2, lambda a: a.__setitem__(4, 900))),
                                         "shd_test.h5#2: spike 4 on unit 900; this dataset has 700 channels"),
}


@pytest.mark.parametrize("case", sorted(SHD_CASES))
@pytest.mark.parametrize("skip", [False, True])
def test_a_bad_shd_file_is_one_line_naming_the_recording(capsys, tmp_path, case, skip):
    files, message = SHD_CASES[case]
    root = shd_files(tmp_path / "shd", **files)
    rc, out, err = verify_shd(capsys, tmp_path, audio_graph(tmp_path / "g.nir"), root,
                              *(("--set", "data.on_error=skip") if skip else ()))
    if skip and case == "integer spike times":     # every recording is bad: skipped, and nothing is left
        message = "no readable test samples (60 skipped, e.g. "
    elif skip and "#" in message.split(";")[0] and "label" not in message:  # one recording: skipped alone, named
        assert rc == 3, err[-2000:]     # (the silent graph)
        skipped = json.loads((tmp_path / "v" / "report.json").read_text())["task"]["skipped"]
        assert len(skipped) == 1 and message in skipped[0]["error"], skipped
        assert "skipped (data.on_error=skip): 1 recording, e.g." in out
        return
    line = err.strip().splitlines()[-1]
    assert rc == 2 and line.startswith("error: ") and message in line and "Traceback" not in err, err[-2000:]
    assert "65536" not in line


def test_one_nan_time_skips_that_recording_only(capsys, tmp_path):
    root = shd_files(tmp_path / "shd", edit=_set_recording("spikes/times", 7, lambda a: a.__setitem__(5, np.nan)))
    rc, out, err = call(capsys, "data", "--name", "shd", "--root", root, "--skip-bad", "--set",
                        f"data.cache={tmp_path / 'cache'}")
    summary = json.loads(out)
    assert rc == 0 and summary["test"]["samples"] == 59 and summary["train"]["samples"] == 40
    assert [s["file"] for s in summary["test"]["skipped"]] == [f"{root / 'shd_test.h5'}#7"]
    assert summary["test"]["duration_us"]["min"] >= 0


def test_the_publishers_gzipped_file_gets_the_gunzip_hint(capsys, tmp_path):
    root = shd_files(tmp_path / "shd")
    with open(root / "shd_test.h5", "rb") as a, gzip.open(root / "shd_test.h5.gz", "wb") as b:
        b.write(a.read())
    (root / "shd_test.h5").unlink()
    refused(capsys, "data", "--name", "shd", "--root", root, "--set", f"data.cache={tmp_path / 'c'}",
            fragments=("shd_test.h5: not found, but shd_test.h5.gz is", "gunzip -k"))


def test_a_root_that_is_a_file_is_named_as_one(capsys, tmp_path):
    (tmp_path / "shd_test.h5").write_bytes(b"x")
    refused(capsys, "data", "--name", "shd", "--root", tmp_path / "shd_test.h5",
            fragments=("shd_test.h5: a file, not a folder",))


@pytest.mark.parametrize("args, fragment", [
    (("--rate", "0.3"), "--rate with --data: the recordings is the input"),
    (("--set", "data.name=digits"), "--set data.name=digits: give --data NAME instead"),
    (("--samples", "0"), "--samples 0: give 1..100,000 test recordings"),
])
def test_options_that_would_be_ignored_or_misread_with_data_are_refused(capsys, tmp_path, args, fragment):
    root = shd_files(tmp_path / "shd")
    rc, out, err = verify_shd(capsys, tmp_path, audio_graph(tmp_path / "g.nir"), root, *args)
    assert rc == 2 and fragment in err.strip().splitlines()[-1], err


@pytest.mark.parametrize("args, fragment", [
    (("--bin-us", "1000"), "--bin-us without --data"), (("--root", "."), "--root without --data"),
    (("--set", "data.n_test=3"), "--set without --data"),
    (("--rate", "0.2", "--input", "x.npy"), "--rate with --input"),
])
def test_data_options_without_data_are_refused(capsys, tmp_path, args, fragment):
    from graphs import foreign_graph
    nir.write(tmp_path / "g.nir", foreign_graph())
    refused(capsys, "verify", tmp_path / "g.nir", "--out", tmp_path / "v", *args, fragments=(fragment,))


def test_framing_and_sample_counts_are_said_as_they_are(capsys, tmp_path):
    """--bin-us 400000 is four bins of 400 ms (SHD's 1.4 s window widened to 1.6 s), not three of 467 ms; a bin
    count of 1 is not refused for train.k (an SLTT-K setting); 5 samples asked of a split capped at 3 says so."""
    root = shd_files(tmp_path / "shd")
    graph = audio_graph(tmp_path / "g.nir")
    rc, out, err = verify_shd(capsys, tmp_path, graph, root, "--bin-us", "400000", "--samples", "5",
                              "--set", "data.n_test=3")
    assert rc == 3, err[-2000:]
    header = out.splitlines()[0]
    assert "4 bins of 400 ms (--bin-us 400000; the window widened to 1600 ms to hold whole bins)" in header
    assert "all 3 test recordings (5 asked for: the test split as read holds 3, data.n_test=3)" in header
    rc, out, err = verify_shd(capsys, tmp_path, graph, root, "--bin-us", "1400000", out="v2")
    assert rc == 3 and "1 bins of 1400 ms" in out.splitlines()[0], err[-2000:]


# --- 12. refused before the work --------------------------------------------------------------------------------

def test_a_network_beyond_the_chip_is_refused_before_any_data_is_read(capsys, tmp_path):
    refused(capsys, "run", "--set", "model.hidden=8192", "--set", f"data.cache={tmp_path / 'cache'}",
            "--out", tmp_path / "r", fragments=("lif4: fan_in = 8192 violates", "before any data was read"))
    assert not (tmp_path / "cache").exists() and not (tmp_path / "r").exists()


def test_a_shape_mismatch_is_refused_before_any_recording_is_synthesised(capsys, tmp_path):
    refused(capsys, "verify", audio_graph(tmp_path / "g.nir", inputs=64), "--dt", DT, "--target", "reference",
            "--data", "spoken_digits", "--set", "data.channels=32", "--set", f"data.cache={tmp_path / 'cache'}",
            "--out", tmp_path / "v", fragments=("spoken_digits frames to (32,) per step", "input is (64,)"))
    assert not (tmp_path / "cache").exists()


# --- 13. one name per layer -------------------------------------------------------------------------------------

def test_a_layer_has_one_name_in_the_graph_the_vectors_and_every_report():
    """The recurrent layer's neurons are node rnn1.lif of the graph: the population, so every divergence and
    report, is named so too (not the PyTorch model's rec1)."""
    from export.nir_export import to_nir
    from hardware.chip.loihi2 import Limits
    from hardware.graph import read
    from models.neuron import CubaParams
    from models.snn import DeployedNet, IntLayer
    from pipeline.certify.vectors import node_names
    rng = np.random.default_rng(0)
    p = CubaParams(2048, 256, 20, state_bits=Limits().state_bits)
    w = lambda *shape: rng.integers(-50, 50, shape).astype(np.int8)     # noqa: E731
    model = DeployedNet((4,), (IntLayer("rec1", w(6, 4), 0, p, recurrent=w(6, 6)), IntLayer("fc1", w(3, 6), 0, p)))
    graph = to_nir(model, 0.02, 6)
    net = read.load(graph)
    assert list(net.populations) == ["rnn1.lif", "lif2"]
    assert node_names(graph) == {k: k for k in net.populations}


def test_cache_building_workers_never_see_ctrl_c_and_lead_their_own_process_groups():
    """Synthesis and saccade simulation workers: started with SIGINT blocked (a Ctrl-C while a worker starts up
    would print its traceback), each in a process group of its own, so that the terminal's Ctrl-C reaches the
    command alone, which ends them. In a fresh interpreter, where making the pool starts multiprocessing's
    resource tracker (which unblocks SIGINT in its caller's thread)."""
    script = ("import os, signal, json; from pipeline.data import building\n"
              "with building.workers(2) as ex:\n"
              "    masks = [signal.SIGINT in ex.submit(signal.pthread_sigmask, signal.SIG_BLOCK, []).result()"
              " for _ in range(4)]\n"
              "    groups = {ex.submit(os.getpgrp).result() for _ in range(4)}\n"
              "print(json.dumps({'blocked': masks, 'own_group': os.getpgrp() not in groups,"
              " 'restored': signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []),"
              " 'handler': signal.getsignal(signal.SIGINT) is signal.default_int_handler}))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {"blocked": [True] * 4, "own_group": True, "restored": True, "handler": True}


def test_a_killed_builds_partial_folder_is_swept_by_the_next_and_a_failed_one_removed(tmp_path):
    from pipeline.data import building
    final = tmp_path / "digits-v1-seed0-40-10"
    dead = tmp_path / "digits-v1-seed0-40-10.dead"
    dead.mkdir()
    (dead / building.PARTIAL_MARKER).write_text(json.dumps({"tool": "nmpipe", "owner": {
        "pid": 2**22 + 12345, "start": "1", "host": socket.gethostname()}}))     # no such pid
    foreign = tmp_path / "digits-v1-seed0-40-10.mine"
    foreign.mkdir()
    with pytest.raises(RuntimeError):
        with building.partial(final, final.name + ".") as tmp:
            assert not dead.exists() and foreign.exists()        # swept first: only the marked, dead one
            (tmp / "x").write_text("x")
            raise RuntimeError("the build failed")
    assert not final.exists() and sorted(p.name for p in tmp_path.iterdir()) == [foreign.name]
    with building.partial(final, final.name + ".") as tmp:
        (tmp / "x").write_text("x")
    assert (final / "x").read_text() == "x" and not (final / building.PARTIAL_MARKER).exists()


def test_a_dense_layer_of_zero_weights_is_not_written_for_netx(capsys, tmp_path):
    """lava-dl netx divides by a dense layer's largest weight when it loads one: all zero crashed it inside a Lava
    worker. verify now notes why model.net was not written and runs Lava alone."""
    from export import netx_export
    from hardware.errors import GraphError
    from hardware.graph import read
    net = read.load(audio_graph(tmp_path / "g.nir", 3, inputs=5), dt=DT)
    with pytest.raises(GraphError, match="layer lif: every weight is zero; lava-dl netx cannot load"):
        netx_export.write(net, tmp_path / "model.net")
    assert not (tmp_path / "model.net").exists()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_exception_in_a_lava_worker_is_one_line_naming_the_samples():
    import math

    from hardware.backends.pool import run_all
    from hardware.errors import LavaError
    with pytest.raises(LavaError, match=r"^Lava fixed_pt failed on samples 0\.\.: ValueError: math domain error$"):
        run_all(math.sqrt, [(-1.0,)], 1, 60, "Lava fixed_pt", [1], ["samples 0.."], progress=False)
