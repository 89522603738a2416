"""Bad input gets one line naming the key, file, node or option, exit 2; a dead network is never a plain success
(issue 15, items 4-12). Most cases run the command in-process (``pipeline.cli.main``): a traceback fails the test
as an exception."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import call, random_net, refused
from datafolders import cifar10dvs_folder, gesture_tonic_folder, nmnist_folder
from graphs import DT, foreign_graph

from export.nir_export import to_nir
from hardware.errors import GraphError
from hardware.graph import nir_checks, nir_contract

# --- 4. non-finite configuration, diverging training ------------------------------------------------------------

@pytest.mark.parametrize("item", ["train.lr=inf", "train.lr=nan", "train.surrogate_slope=nan",
                                  "train.weight_decay=inf", "select.ratio=nan", "distill.lr=-inf"])
def test_non_finite_configuration_is_refused(item, capsys, tmp_path):
    key, value = item.split("=")
    refused(capsys, "run", "--quick", "--set", item, "--out", tmp_path / "r",
             fragments=(key, "finite", value))
    assert not (tmp_path / "r").exists()


def test_a_zero_surrogate_slope_is_refused(capsys, tmp_path):
    refused(capsys, "run", "--set", "train.surrogate_slope=0", "--out", tmp_path / "r",
             fragments=("train.surrogate_slope", "> 0"))


@pytest.mark.slow
def test_training_that_diverges_stops_naming_the_epoch(capsys, tmp_path, quick_cache):
    line = refused(capsys, "run", "--quick", "--target", "reference", "--set", "train.lr=1e30",
                    "--set", f"data.cache={quick_cache}", "--out", tmp_path / "r",
                    fragments=("training diverged in epoch 1/1", "train.lr = 1e+30"))
    assert "nothing was written" in line and list(tmp_path.iterdir()) == []


# --- 5, 6. silent networks, the number of samples compared -----------------------------------------------------

@pytest.mark.slow
def test_a_silent_network_is_flagged_and_fails_with_exit_3(capsys, tmp_path, quick_cache):
    out = tmp_path / "r"
    rc, stdout, err = call(capsys, "run", "--quick", "--target", "reference", "--out", out, "--samples", "100000",
                           "--set", "model.vth_hidden=131071", "--set", f"data.cache={quick_cache}")
    assert rc == 3, err[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "SILENT" and report["backends"]["reference"]["identical"] == 40
    silent = {s["layer"]: s for s in report["silent_layers"]}       # the default conv model: every layer
    # named by their neuron nodes in model.nir (conv1, conv2, fc1, fc2 of the PyTorch model)
    assert list(silent) == ["lif1", "lif2", "lif3", "lif4"] and all(s["samples"] == 40 for s in silent.values())
    cause = silent["lif1"]["cause"]
    assert "no neuron crossed its threshold" in cause and "% of the threshold" in cause
    assert silent["lif2"]["cause"] == "no spike reaches it: lif1 is silent"
    assert "WARNING: layer lif1 never spiked in any of the 40 compared samples" in stdout
    assert "SILENT: every readout stayed silent, so identical spikes certify nothing; exit status 3" in stdout
    assert "WARNING: layer lif4 never spiked" in (out / "report.html").read_text()
    # 6: the number actually compared, and what was asked for
    assert report["test_samples"] == 40 and report["samples_requested"] == 100000
    assert "test accuracy (40 samples; 100000 asked for, the test split has 40)" in stdout


@pytest.mark.slow
def test_a_network_that_spikes_has_no_silent_layers(capsys, tmp_path, quick_cache):
    rc, stdout, err = call(capsys, "run", "--quick", "--target", "reference", "--out", tmp_path / "r",
                           "--set", f"data.cache={quick_cache}")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rc == 0 and report["verdict"] == "IDENTICAL" and report["silent_layers"] == [], err[-2000:]
    assert "WARNING" not in stdout and "samples_requested" not in report


# --- 7, 8, 11, 12. verify: graphs, options, inputs ---------------------------------------------------------------

def _write(tmp_path: Path, g: nir.NIRGraph, name: str = "g.nir") -> Path:
    nir.write(tmp_path / name, g)
    return tmp_path / name


def test_the_foreign_test_graph_is_active(capsys, tmp_path):
    rc, _, err = call(capsys, "verify", _write(tmp_path, foreign_graph()), "--target", "reference",
                      "--out", tmp_path / "v")
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert rc == 0 and report["verdict"] == "REFERENCE ONLY" and report["silent_layers"] == [], err
    assert all(row["integer_spikes"] > 0 for row in report["float"])


BAD_FIELDS = [  # (node, field, value, fragment)
    ("lif", "tau", -0.005, "non-positive"),
    ("lif", "tau", 0.0, "non-positive"),
    ("cuba", "tau_mem", 0.0, "non-positive"),
    ("cuba", "tau_syn", -0.002, "negative"),
    ("fc", "weight", np.nan, "non-finite"),
    ("out", "weight", np.inf, "non-finite"),
    ("fc", "bias", np.nan, "non-finite"),
    ("lif", "v_threshold", np.inf, "non-finite"),
    ("lif", "r", np.nan, "NaN"),
    ("lif", "r", np.inf, "infinite"),
    ("cuba", "v_leak", -np.inf, "non-finite"),
    ("cuba", "w_in", np.nan, "non-finite"),
    ("cuba", "v_reset", np.nan, "non-finite"),
]


@pytest.mark.parametrize("node,field,value,fragment", BAD_FIELDS,
                         ids=[f"{n}.{f}={v}" for n, f, v, _ in BAD_FIELDS])
def test_verify_names_the_node_and_field_of_a_bad_value(node, field, value, fragment, capsys, tmp_path):
    g = foreign_graph()
    arr = np.array(getattr(g.nodes[node], field), dtype=np.float64)
    arr.flat[0] = value
    if "tau" in field:
        arr[...] = value            # every neuron, as in the case
    setattr(g.nodes[node], field, arr)
    refused(capsys, "verify", _write(tmp_path, g), "--out", tmp_path / "v",
             fragments=(f"node {node!r}", field, fragment))
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("option,value", [("--dt", "0"), ("--dt", "-1e-3"), ("--dt", "nan"), ("--dt", "inf"),
                                          ("--rate", "-0.1"), ("--rate", "1.5"), ("--rate", "nan"),
                                          ("--samples", "0"), ("--steps", "0"), ("--workers", "0")])
def test_verify_names_a_bad_option(option, value, capsys, tmp_path):
    refused(capsys, "verify", _write(tmp_path, foreign_graph()), option, value, "--out", tmp_path / "v",
             fragments=(option,))
    assert not (tmp_path / "v").exists()


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case", ["half", "negative", "nan", "counts", "no input key", "empty npz", "no samples"])
def test_verify_refuses_inputs_that_are_not_spikes(case, capsys, tmp_path):
    spikes = (np.random.default_rng(0).random((10, 6)) < 0.3).astype(np.float64)
    if case in ("half", "negative", "nan", "counts"):
        spikes[3, 2] = {"half": 0.5, "negative": -1.0, "nan": np.nan, "counts": 2.0}[case]
        path, fragment = tmp_path / "x.npy", "values other than 0 and 1"
        np.save(path, spikes)
    elif case == "no input key":
        path, fragment = _npz(tmp_path / "x.npz", spikes=spikes), "needs an array named 'input'"
    elif case == "empty npz":
        path, fragment = _npz(tmp_path / "x.npz"), "no arrays"
    else:
        path, fragment = tmp_path / "x.npy", "empty"
        np.save(path, np.zeros((0, 6)))
    refused(capsys, "verify", _write(tmp_path, foreign_graph()), "--input", path, "--out", tmp_path / "v",
             fragments=(str(path), fragment))
    assert not (tmp_path / "v").exists()


def test_an_unknown_node_type_is_named(capsys, tmp_path):
    path = _write(tmp_path, foreign_graph())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = np.bytes_("Foo")
    refused(capsys, "verify", path, "--out", tmp_path / "v", fragments=("node 'lif' has type 'Foo'",))
    refused(capsys, "check", path, fragments=("node 'lif' has type 'Foo'",))


@pytest.mark.parametrize("command", ["verify", "check"])
def test_a_folder_or_a_non_nir_file_given_as_the_graph_is_one_line(command, capsys, tmp_path):
    (tmp_path / "notes.nir").write_text("not hdf5")
    refused(capsys, command, tmp_path, fragments=("is a folder",))
    refused(capsys, command, tmp_path / "notes.nir", fragments=("not a readable NIR file",))


def test_taus_that_differ_are_printed_as_taus(capsys, tmp_path):
    g = foreign_graph()
    g.nodes["lif"].tau = np.array([0.005, 0.005, 0.005, 0.005, 0.01])
    refused(capsys, "verify", _write(tmp_path, g), "--out", tmp_path / "v",
             fragments=("node 'lif': tau differs between neurons (0.005..0.01 s)",))


@pytest.mark.slow
def test_verify_flags_a_graph_silent_at_the_wrong_dt(capsys, tmp_path):
    rc, stdout, _ = call(capsys, "verify", _write(tmp_path, foreign_graph()), "--target", "reference",
                         "--dt", "1e-7", "--out", tmp_path / "v")
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert rc == 3 and report["verdict"] == "SILENT"
    assert [s["layer"] for s in report["silent_layers"]] == ["lif", "cuba"]
    assert "dt = 1e-07 s" in report["silent_layers"][0]["cause"] and "give --dt" in report["silent_layers"][0]["cause"]
    assert "WARNING: layer lif never spiked" in stdout


# --- 9, 11. check: our own graph, continuous fields against the integer metadata --------------------------------

def our_graph() -> nir.NIRGraph:
    return to_nir(random_net(np.random.default_rng(0)), DT, 8)


def test_our_exported_graph_says_the_same_in_fields_and_metadata():
    """Including the decay edge cases du = 4095 (tau_syn = 0), dv = 0 (tau_mem = r = inf) and du = 0."""
    g = our_graph()
    assert {(n.metadata["du"], n.metadata["dv"]) for n in g.nodes.values() if isinstance(n, nir.CubaLIF)} == \
        {(1024, 256), (4095, 0), (0, 4095)}
    nir_checks.validate(g)
    assert nir_contract.contract_errors(g) == []


def _set(node, field):
    def change(g, value):
        arr = np.array(getattr(g.nodes[node], field), dtype=np.float64)
        arr.flat[0] = value
        setattr(g.nodes[node], field, arr)
    return change


def _meta(node, key):
    def change(g, value):
        g.nodes[node].metadata[key] = value
    return change


CHECK_CASES = {  # name: (change, value, fragments)
    "NaN float weight": (_set("fc1", "weight"), np.nan, ("node 'fc1'", "weight", "non-finite")),
    "inf v_threshold": (_set("lif2", "v_threshold"), np.inf, ("node 'lif2'", "v_threshold", "non-finite")),
    "negative tau": (_set("lif1", "tau_mem"), -0.01, ("node 'lif1'", "tau_mem", "non-positive")),
    "changed float weight": (_set("fc2", "weight"), 1.5, ("node 'fc2'", "weight differs from weight_mantissa")),
    "tau_syn off du": (_set("lif1", "tau_syn"), 0.5, ("node 'lif1'", "tau_syn disagrees", "du = 1024")),
    "v_threshold off vth": (_set("lif1", "v_threshold"), 64.0, ("node 'lif1'", "v_threshold disagrees")),
    "NaN weight_exp": (_meta("fc1", "weight_exp"), np.nan, ("node 'fc1'", "weight_exp", "not a whole number")),
    "NaN vth": (_meta("lif2", "vth"), np.nan, ("node 'lif2'", "vth", "not a whole number")),
    "fractional du": (_meta("lif3", "du"), 2.5, ("node 'lif3'", "du", "not a whole number")),
}


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_check_refuses_a_graph_whose_fields_are_bad_or_disagree_with_its_metadata(case, capsys, tmp_path):
    change, value, fragments = CHECK_CASES[case]
    g = our_graph()
    change(g, value)
    refused(capsys, "check", _write(tmp_path, g), fragments=fragments)


def test_check_passes_our_exported_graph(capsys, tmp_path):
    rc, out, err = call(capsys, "check", _write(tmp_path, our_graph()))
    assert rc == 0 and "within Loihi 2's limits" in out, err


# --- 10, 11, 12. datasets ---------------------------------------------------------------------------------------

def _data(capsys, root, name="nmnist", *extra):
    return call(capsys, "data", "--name", name, "--root", root, "--set", f"data.cache={root.parent / 'cache'}",
                *extra)


def test_a_renamed_class_folder_is_named(capsys, tmp_path):
    root = nmnist_folder(tmp_path / "nm")
    (root / "Train" / "3").rename(root / "Train" / "three")
    refused(capsys, "data", "--name", "nmnist", "--root", root, fragments=(str(root / "Train" / "three"),
                                                                              "not a class folder"))


def test_a_class_missing_from_one_split_is_named(capsys, tmp_path):
    root = nmnist_folder(tmp_path / "nm")
    for f in (root / "Train" / "3").iterdir():
        f.unlink()
    refused(capsys, "data", "--name", "nmnist", "--root", root,
             fragments=("class '3' has no training samples",))


def test_a_zero_length_recording_is_named_or_skipped_and_listed(capsys, tmp_path):
    root = nmnist_folder(tmp_path / "nm")
    empty = root / "Train" / "4" / "00000.bin"
    empty.write_bytes(b"")
    refused(capsys, "data", "--name", "nmnist", "--root", root, "--set", f"data.cache={tmp_path / 'c'}",
             fragments=(str(empty), "holds no events"))
    rc, out, err = call(capsys, "data", "--name", "nmnist", "--root", root, "--skip-bad",
                        "--set", f"data.cache={tmp_path / 'c'}")
    summary = json.loads(out)
    assert rc == 0 and [s["file"] for s in summary["train"]["skipped"]] == [str(empty)], err
    assert summary["train"]["samples"] == 29


def test_an_aedat2_file_with_only_a_header_is_named(capsys, tmp_path):
    root = cifar10dvs_folder(tmp_path / "cifar", per_class=2)
    bare = root / "cat" / "cifar10_cat_0.aedat"
    bare.write_bytes(b"#!AER-DAT2.0\r\n#Format: RAW\r\n")
    refused(capsys, "data", "--name", "cifar10dvs", "--root", root, "--set", "data.test_fraction=0.5",
             "--set", f"data.cache={tmp_path / 'c'}", fragments=(str(bare), "holds no events"))


def test_a_folder_named_like_a_recording_is_named_as_a_folder(capsys, tmp_path):
    root = nmnist_folder(tmp_path / "nm")
    (root / "Train" / "1" / "99999.bin").mkdir()
    (root / "Train" / "1" / "99999.bin" / "x").write_bytes(b"\0" * 4096)
    refused(capsys, "data", "--name", "nmnist", "--root", root, "--set", f"data.cache={tmp_path / 'c'}",
             fragments=("99999.bin: is a folder, not an event file",))


@pytest.mark.parametrize("name", ["wave.npy", "99.npy"])
def test_gesture_npy_files_not_named_by_class_index_are_named_or_skipped(name, capsys, tmp_path):
    root = gesture_tonic_folder(tmp_path / "g")
    odd = root / "ibmGestureTrain" / "user01_led" / name
    shutil.copy(root / "ibmGestureTrain" / "user01_led" / "0.npy", odd)
    refused(capsys, "run", "--quick", "--target", "reference", "--out", tmp_path / "r",
             "--set", "data.name=dvsgesture", "--set", f"data.root={root}", "--set", f"data.cache={tmp_path / 'c'}",
             fragments=(str(odd), "class index"))
    rc, out, err = call(capsys, "data", "--name", "dvsgesture", "--root", root, "--skip-bad",
                        "--set", f"data.cache={tmp_path / 'c'}")
    summary = json.loads(out)
    assert rc == 0 and [s["file"] for s in summary["train"]["skipped"]] == [str(odd)], err
    assert sum(summary["train"]["per_class"].values()) == summary["train"]["samples"] == 22


@pytest.mark.parametrize("damaged", ["meta.json", "distilled.npz"])
def test_a_corrupt_distilled_set_is_named(damaged, capsys, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    meta = {"data": {"name": "digits", "n_bins": 8, "duration_us": 310_000, "downsample": 1}}
    (folder / "meta.json").write_text(json.dumps(meta) if damaged != "meta.json" else "{not json")
    (folder / "distilled.npz").write_bytes(b"PK\x03\x04 broken")
    refused(capsys, "run", "--quick", "--target", "reference", "--out", tmp_path / "r",
             "--set", f"data.distilled={folder}", fragments=(str(folder / damaged),))


def test_argument_errors_are_one_line_too(capsys):
    refused(capsys, "verify", "g.nir", "--samples", "many", fragments=("--samples", "--help"))
    refused(capsys, "run", "--target", fragments=("--target",))


def test_graph_error_for_a_missing_file_is_one_line(capsys, tmp_path):
    with pytest.raises(GraphError, match="not a readable NIR file"):
        nir_checks.read(tmp_path / "missing.nir")
