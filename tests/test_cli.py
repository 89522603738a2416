"""The command line: a quick end-to-end run on real Lava, and every bad-input case (subprocesses; the refusals that
read data run in this process in the quick tier and in a fresh process in the slow tier)."""
import json
from pathlib import Path

import pytest
from conftest import FRESH, cli, runner

ROOT = Path(__file__).resolve().parents[1]


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_on_real_lava(quick_run_all):
    out, stdout = quick_run_all         # run --quick --target all (tests/conftest.py)
    report = json.loads((out / "report.json").read_text())
    for name in ("reference", "lava", "onnx", "netx"):
        b = report["backends"][name]
        assert b["identical"] == b["compared"] == 40 and b["first_divergence"] is None
        assert report["accuracy"][name] == report["accuracy"]["golden"]
    assert sum(layer["expected_spikes"] for layer in report["backends"]["lava"]["layers"].values()) > 0
    assert report["backends"]["lava"]["tail_positions_compared"] > 0           # batched: past each sample's end
    assert report["expected"]["by"] == "golden" and report["exit_status"] == 0
    assert report["config"]["data"]["n_test"] == 40
    act = report["loihi2"]["activity"]
    assert act["per_inference"]["synops"] > 0 and 0 < act["per_inference"]["sparsity"] < 1
    assert act["per_inference"]["energy_uj_estimate"] > 0 and report["loihi2"]["resources"]["cores"] >= 2
    assert "SynOps" in stdout and "estimate" in stdout
    for name in ("config.json", "model.pt", "model.nir", "model.onnx", "model.net", "training.png", "rasters.png",
                 "report.html", "divergence.png", "vectors.h5", "certificate.json"):
        assert (out / name).stat().st_size > 0
    assert "lava: 40/40 samples spike-identical" in stdout and "netx: 40/40 samples spike-identical" in stdout


def test_help_teaches():
    proc = cli("run", "--help")
    assert proc.returncode == 0 and "--target" in proc.stdout and "train.epochs" in proc.stdout


def test_unknown_target(tmp_path):
    assert_one_line_error(cli("run", "--target", "loihi3", "--out", str(tmp_path)), "unknown target 'loihi3'")


def test_unknown_key(tmp_path):
    assert_one_line_error(cli("run", "--set", "train.epoks=2", "--out", str(tmp_path)), "train.epoks")


def test_bad_value(tmp_path):
    assert_one_line_error(cli("run", "--set", "train.epochs=many", "--out", str(tmp_path)), "train.epochs", "many")


def test_value_outside_hardware_range(tmp_path):
    assert_one_line_error(cli("run", "--set", "model.vth_hidden=200000", "--out", str(tmp_path)), "17 bit")


def _quick_folder(cache: Path) -> Path:
    return cache / "digits-v1-seed0-200-40"


def _corrupt_quick_folder(cache: Path) -> None:
    """A cached digits folder whose one training file is truncated (and one valid test file)."""
    folder = _quick_folder(cache)
    for split in ("Train", "Test"):
        (folder / split / "3").mkdir(parents=True)
    (folder / "Train" / "3" / "00001.bin").write_bytes(b"\0" * 13)
    (folder / "Test" / "3" / "00001.bin").write_bytes(bytes([1, 2, 0x80, 0, 9]))


@FRESH
def test_corrupt_event_file_is_named(fresh, tmp_path, capsys):
    _corrupt_quick_folder(tmp_path / "cache")
    proc = runner(fresh, capsys)("run", "--quick", "--target", "reference", "--out", str(tmp_path / "r"),
               "--set", f"data.cache={tmp_path / 'cache'}")
    assert_one_line_error(proc, "00001.bin", "truncated after byte 10")


@FRESH
def test_empty_data_folder_is_named(fresh, tmp_path, capsys):
    _quick_folder(tmp_path / "cache").mkdir(parents=True)
    proc = runner(fresh, capsys)("run", "--quick", "--target", "reference", "--out", str(tmp_path / "r"),
               "--set", f"data.cache={tmp_path / 'cache'}")
    assert_one_line_error(proc, "Train: no such folder")


@FRESH
def test_failed_run_leaves_the_previous_run_folder_untouched(fresh, tmp_path, capsys):
    from pipeline.runfolder import staged
    out = tmp_path / "run"
    with staged(out, "run") as stage:                     # an earlier run folder of ours
        (stage / "report.json").write_text('{"previous": true}')
    before = sorted(p.name for p in out.iterdir())
    _corrupt_quick_folder(tmp_path / "cache")
    proc = runner(fresh, capsys)("run", "--quick", "--target", "reference", "--out", str(out), "--overwrite",
               "--set", f"data.cache={tmp_path / 'cache'}")
    assert_one_line_error(proc, "00001.bin")
    assert sorted(p.name for p in out.iterdir()) == before and (out / "report.json").read_text() == '{"previous": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]      # no partial folder left behind


@pytest.mark.slow
def test_a_graph_netx_cannot_store_still_runs_on_other_targets(tmp_path):
    out = tmp_path / "run"
    args = ("--quick", "--out", str(out), "--set", f"data.cache={tmp_path / 'cache'}", "--set", "model.weight_exp=-1",
            "--set", "model.arch=dense")         # a conv model keeps exponents >= 0 (Lava's Conv applies none)
    proc = cli("run", "--target", "reference", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert "weight_exp -1 < 0" in report["netx"] and not (out / "model.net").exists()
    assert_one_line_error(cli("run", "--target", "netx", "--overwrite", *args), "layer lif1: weight_exp -1 < 0")
    assert json.loads((out / "report.json").read_text()) == report        # the refused run changed nothing
