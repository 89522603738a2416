"""Each dataset end to end through `run --target reference` on a small folder in its publisher's layout;
`pipeline data` summaries; the framed-tensor cache; and every bad-input case."""
import dataclasses
import json

import datafolders
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import dataset, registry
from pipeline.data.layout import DataError

FOLDERS = {"nmnist": datafolders.nmnist_folder, "dvsgesture": datafolders.gesture_folder,
           "cifar10dvs": datafolders.cifar10dvs_folder, "fashion": datafolders.fashion_folder}


def _cfg(name, root, cache, *extra):
    items = [f"data.name={name}", f"data.root={root}", f"data.cache={cache}", "data.n_bins=8"] + list(extra)
    return registry.resolve(apply_overrides(RunConfig(), items)).data


@pytest.mark.parametrize("name, make, n_train, n_test, frame", [
    ("nmnist", datafolders.nmnist_folder, 30, 10, (8, 2, 34, 34)),
    ("dvsgesture", datafolders.gesture_folder, 22, 11, (8, 2, 32, 32)),
    ("dvsgesture", datafolders.gesture_tonic_folder, 22, 11, (8, 2, 32, 32)),
    ("cifar10dvs", datafolders.cifar10dvs_folder, 90, 10, (8, 2, 32, 32)),
    ("fashion", datafolders.fashion_folder, 30, 10, (8, 2, 34, 34)),
])
def test_each_dataset_runs_end_to_end(tmp_path, capsys, name, make, n_train, n_test, frame):
    root = make(tmp_path / "data")
    code = main(["run", "--quick", "--target", "reference", "--out", str(tmp_path / "run"), "--set",
                 f"data.name={name}", "--set", f"data.root={root}", "--set", f"data.cache={tmp_path / 'cache'}"])
    assert code == 0, capsys.readouterr()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    d = report["data"]
    assert d["train"]["samples"] + d["validation"]["samples"] == n_train and d["test"]["samples"] == n_test
    assert report["data"]["frames"] == list(frame)
    b = report["backends"]["reference"]
    assert b["identical"] == b["compared"] == n_test
    assert report["model"]["layers"][-1]["neurons"] == [len(registry.DATASETS[name].classes)]


def test_gesture_samples_are_cut_at_the_labelled_intervals(tmp_path):
    root = datafolders.gesture_folder(tmp_path / "g")
    train, test = dataset.load(_cfg("dvsgesture", root, tmp_path / "c"))
    assert list(train.labels) == list(range(11)) * 2 and list(test.labels) == list(range(11))
    assert train.n_events.tolist() == [400] * 22                   # every event of each gesture, none of its neighbours
    assert (train.duration_us < 1_500_000).all() and train.names[0].endswith("[5000000:6500000]")


def test_cifar10dvs_split_is_seeded_and_disjoint(tmp_path):
    root = datafolders.cifar10dvs_folder(tmp_path / "c")
    a = [set(s.names) for s in dataset.load(_cfg("cifar10dvs", root, tmp_path / "k"))]
    b = [set(s.names) for s in dataset.load(_cfg("cifar10dvs", root, tmp_path / "k"))]
    c = [set(s.names) for s in dataset.load(_cfg("cifar10dvs", root, tmp_path / "k", "data.seed=1"))]
    assert a == b and a != c and not a[0] & a[1] and (len(a[0]), len(a[1])) == (90, 10)


def test_data_command_prints_a_summary(tmp_path, capsys):
    root = datafolders.gesture_folder(tmp_path / "g")
    assert main(["data", "--name", "dvsgesture", "--root", str(root), "--set", f"data.cache={tmp_path / 'c'}"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["sensor"] == [128, 128] and s["train"]["samples"] == 22 and s["test"]["samples"] == 11
    assert s["train"]["per_class"]["hand_clapping"] == 2 and s["train"]["events_per_sample"]["median"] == 400
    assert s["test"]["skipped"] == [] and s["test"]["duration_us"]["max"] < 1_500_000


def test_second_load_reads_the_framed_cache_not_the_events(tmp_path, monkeypatch):
    root = datafolders.cifar10dvs_folder(tmp_path / "c")
    cfg = _cfg("cifar10dvs", root, tmp_path / "k")
    first = dataset.load(cfg)

    def boom(path):
        raise AssertionError(f"read {path} again")
    spec = registry.DATASETS["cifar10dvs"]
    monkeypatch.setitem(registry.DATASETS, "cifar10dvs", dataclasses.replace(spec, read=boom))
    second = dataset.load(cfg)
    assert all(np.array_equal(a.frames, b.frames) and a.names == b.names for a, b in zip(first, second))
    changed = _cfg("cifar10dvs", root, tmp_path / "k", "data.n_bins=4")     # new framing: not the cached tensors
    with pytest.raises(AssertionError, match="read .* again"):
        dataset.load(changed)


def test_missing_label_file_is_named_or_skipped_and_listed(tmp_path, capsys):
    root = datafolders.gesture_folder(tmp_path / "g")
    (root / "user02_led_labels.csv").unlink()
    with pytest.raises(DataError, match=r"user02_led_labels\.csv: label file missing for user02_led\.aedat"):
        dataset.load(_cfg("dvsgesture", root, tmp_path / "c"))
    assert main(["data", "--name", "dvsgesture", "--root", str(root), "--skip-bad",
                 "--set", f"data.cache={tmp_path / 'c'}"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["train"]["samples"] == 11 and [k["file"] for k in s["train"]["skipped"]] == [str(root / "user02_led.aedat")]


def test_corrupt_file_is_named_with_offset_or_skipped_and_listed(tmp_path):
    root = datafolders.cifar10dvs_folder(tmp_path / "c")
    bad = root / "cat" / "cifar10_cat_1.aedat"
    bad.write_bytes(bad.read_bytes()[:-3])
    with pytest.raises(Exception, match=r"cifar10_cat_1\.aedat: .*truncated after byte"):
        dataset.load(_cfg("cifar10dvs", root, tmp_path / "k"))
    train, test = dataset.load(_cfg("cifar10dvs", root, tmp_path / "k", "data.on_error=skip"))
    skipped = [k["file"] for k in train.skipped + test.skipped]
    assert skipped == [str(bad)] and str(bad) not in train.names + test.names
    assert len(train.labels) + len(test.labels) == 99


@pytest.mark.parametrize("name, layout, message", [
    ("nmnist", lambda r: r.mkdir(), r"Train: no such folder"),
    ("nmnist", lambda r: (r / "Train" / "3").mkdir(parents=True), r"Train: no \*\.bin files"),
    ("dvsgesture", lambda r: r.mkdir(), r"trials_to_train\.txt: not found"),
    ("dvsgesture", lambda r: None, r"no such folder"),
    ("cifar10dvs", lambda r: r.mkdir(), r"no \*\.aedat\* files"),
    ("fashion", lambda r: r.mkdir(), r"Fashion-MNIST IDX files not found"),
])
def test_bad_folders_are_named(tmp_path, name, layout, message):
    layout(tmp_path / "d")
    with pytest.raises(DataError, match=message):
        dataset.load(_cfg(name, tmp_path / "d", tmp_path / "k"))


def test_dataset_without_root_is_refused(capsys):
    assert main(["data", "--name", "nmnist"]) == 2
    assert "data.name=nmnist reads a folder: set data.root=PATH" in capsys.readouterr().err


def test_unknown_dataset_is_refused(capsys):
    assert main(["data", "--name", "imagenet"]) == 2
    assert "data.name = 'imagenet' is not allowed" in capsys.readouterr().err


def test_data_output_stays_json_while_simulating(tmp_path, capsys):
    root = datafolders.fashion_folder(tmp_path / "f")
    assert main(["data", "--name", "fashion", "--root", str(root), "--set", f"data.cache={tmp_path / 'c'}"]) == 0
    out = capsys.readouterr()
    assert "simulating 40 saccade recordings" in out.err
    assert json.loads(out.out)["train"]["per_class"]["bag"] == 3


def test_real_fashion_package_when_installed(tmp_path):
    from pipeline.data.digits import FASHION_ROOT
    if not FASHION_ROOT.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    train, test = dataset.load(_cfg("fashion", "", tmp_path / "c", "data.n_train=20", "data.n_test=10"))
    assert train.frames.shape == (20, 8, 2, 34, 34) and len(test.labels) == 10
    assert 2000 < np.median(train.n_events) < 9000          # N-MNIST-like activity from real garment images


def test_recording_from_another_sensor_is_named(tmp_path):
    """The real 320 x 240 AEDAT 4 recording in a CIFAR10-DVS folder: read through tonic, refused by size."""
    from conftest import SHARED_DATA
    real = SHARED_DATA / "sample_320x240.aedat4"
    if not real.exists():
        pytest.skip(f"{real} not present")
    root = datafolders.cifar10dvs_folder(tmp_path / "c")
    (root / "dog" / "cifar10_dog_0.aedat").unlink()
    (root / "dog" / "cifar10_dog_0.aedat4").write_bytes(real.read_bytes())
    with pytest.raises(Exception, match=r"cifar10_dog_0\.aedat4: event \d+ at x=\d+, y=\d+ lies outside the "
                                        r"128 x 128 sensor of this dataset \(\d+ events outside\)"):
        dataset.load(_cfg("cifar10dvs", root, tmp_path / "k"))
