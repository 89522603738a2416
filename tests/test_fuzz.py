"""Property-based: random bytes into every event reader, random field values into NIR nodes for `verify` and
`check`. Whatever comes in: one line, exit 2 (or a normal result), no traceback, nothing outside --out touched.

Examples are derandomised so that CI is repeatable; set NMPIPE_FUZZ_EXAMPLES (and NMPIPE_FUZZ_RANDOM=1 for fresh
draws) to search further than the suite's time budget allows."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import call as cli_call
from conftest import random_net
from datafolders import (
    cifar10dvs_folder,
    gesture_folder,
    gesture_tonic_folder,
    nmnist_folder,
    random_events,
)
from graphs import conv_graph, foreign_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export.nir_export import to_nir
from pipeline.cli import main
from pipeline.data.formats import aedat2, aedat4, aedat31, idx, nmnist
from pipeline.data.formats.errors import EventFileError

EXAMPLES = int(os.environ.get("NMPIPE_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=not os.environ.get("NMPIPE_FUZZ_RANDOM"),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SHARED_AEDAT4 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sample_320x240.aedat4"


def call(capsys, *args) -> tuple[int, str]:
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, err


def call_out(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_outcome(rc: int, err: str, allowed=(0, 2), names: tuple[str, ...] = ()) -> None:
    """Exit status allowed; a refusal is one 'error:' line (the last), naming one of ``names``."""
    assert rc in allowed, (rc, err[-2000:])
    assert "Traceback" not in err
    if rc == 2:
        errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
        assert not names or any(n in errors[0] for n in names), errors[0]


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """A valid file, truncated, cut, or with bytes overwritten: deeper into the parser than random bytes."""
    edits = st.lists(st.tuples(st.integers(0, max(len(valid) - 1, 0)), st.integers(0, 255)), max_size=8)
    return st.one_of(
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.tuples(st.integers(0, len(valid)), st.integers(0, len(valid))).map(lambda ab: valid[:ab[0]] + valid[ab[1]:]),
        edits.map(lambda es: bytes(_apply(valid, es))))


def _apply(valid: bytes, edits) -> bytearray:
    b = bytearray(valid)
    for i, v in edits:
        if i < len(b):
            b[i] = v
    return b


def _content(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=3000), mutated(valid))


# --- event readers ----------------------------------------------------------------------------------------------

def _npy_bytes(a: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


rng = np.random.default_rng(0)
_EV = random_events(rng, 200, (128, 128), 1_000_000)
FORMATS = {  # name: (dataset, make the folder, the fuzzed file in it, a valid file's bytes, extra --set items)
    "nmnist-bin": ("nmnist", lambda r: nmnist_folder(r, per_class=(1, 1)), "Train/0/00000.bin",
                   nmnist.encode_bin(random_events(rng, 200, (34, 34), 300_000)), ()),
    "cifar10dvs-aedat2": ("cifar10dvs", lambda r: cifar10dvs_folder(r, per_class=2), "cat/cifar10_cat_0.aedat",
                          aedat2.encode_dvs128(_EV), ("data.test_fraction=0.5",)),
    "cifar10dvs-aedat4": ("cifar10dvs", lambda r: cifar10dvs_folder(r, per_class=2), "cat/extra.aedat4",
                          SHARED_AEDAT4.read_bytes()[:20000] if SHARED_AEDAT4.exists() else None,
                          ("data.test_fraction=0.5",)),
    "dvsgesture-aedat31": ("dvsgesture", gesture_folder, "user01_fluorescent.aedat",
                           aedat31.encode_polarity(_EV, packet_size=50), ()),
    "dvsgesture-npy": ("dvsgesture", gesture_tonic_folder, "ibmGestureTrain/user01_led/0.npy",
                       _npy_bytes(np.stack([_EV["x"], _EV["y"], _EV["p"], _EV["t"] / 1000.0], axis=1)), ()),
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_random_bytes_into_every_event_reader_give_one_line_or_a_result(fmt, capsys):
    name, make, rel, valid, extra = FORMATS[fmt]
    if valid is None:           # its seed file is the real recording in ../shared/data: no seed, no fuzzing
        pytest.skip(f"{SHARED_AEDAT4} not present")
    with tempfile.TemporaryDirectory() as tmp:
        root = make(Path(tmp) / "data")
        target = root / rel
        sets = [a for item in extra for a in ("--set", item)]

        @SETTINGS
        @given(data=_content(valid))
        def check(data: bytes) -> None:
            target.write_bytes(data)
            cache = Path(tmp) / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            before = tree(root)
            rc, err = call(capsys, "data", "--name", name, "--root", root, "--set", f"data.cache={cache}", *sets)
            assert_clean_outcome(rc, err, names=(str(target), str(root)))
            assert tree(root) == before                              # the dataset folder is only read
            assert {p.name for p in Path(tmp).iterdir()} <= {"cache", "data"}
        check()


READERS = {  # readers the folder-level test does not reach: (read, file name, a valid file's bytes)
    "idx": (idx.read_idx, "x-images-idx3-ubyte.gz",
            gzip.compress(idx.encode_idx(np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)))),
    "aedat4-random": (aedat4.read_polarity, "x.aedat4", b""),
}


@pytest.mark.slow
@pytest.mark.parametrize("reader", sorted(READERS))
def test_random_bytes_into_a_reader_raise_only_its_one_line_error(reader):
    read, name, valid = READERS[reader]

    @SETTINGS
    @given(data=_content(valid))
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                read(path)
            except EventFileError as e:
                assert str(path) in str(e) and "\n" not in str(e)
    check()


# --- SHD fields --------------------------------------------------------------------------------------------------

SHD_FIELDS = ("spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys")
SHD_CHANGES = ("nan", "inf", "-1", "1e30", "65535", "empty", "short", "2-D", "strings", "drop", "float")


def _shd_change(f: h5py.File, field: str, which: int, change: str) -> None:
    """Change one field of an SHD-format file as a damaged file or another tool might: one recording's (or
    entry's) value, its length, the field's shape, type, or presence."""
    dtype = f[field].dtype
    vlen = h5py.check_vlen_dtype(dtype) is not None
    values = f[field][()]
    entries = [np.asarray(e) for e in values] if vlen else None
    del f[field]
    if change == "drop":
        return
    if change == "2-D":
        f[field] = np.zeros((3, 2))
    elif change == "strings":
        f[field] = np.array([b"x"] * len(values))
    elif change == "short":
        if vlen:
            out = f.create_dataset(field, (len(entries) - 1,), dtype=dtype)
            for k, e in enumerate(entries[:-1]):
                out[k] = e
        else:
            f[field] = values[:-1]
    elif vlen:
        kind = np.float64 if change in ("nan", "inf", "1e30", "float") else np.int64
        i = which % len(entries)
        e = entries[i].astype(kind)
        if change == "empty":
            e = e[:0]
        elif len(e):
            e[which % len(e)] = {"nan": np.nan, "inf": np.inf, "-1": -1, "1e30": 1e30, "65535": 65535,
                                 "float": 0.5}[change]
        entries[i] = e
        out = f.create_dataset(field, (len(entries),), dtype=h5py.vlen_dtype(kind))
        for k, e in enumerate(entries):
            out[k] = e.astype(kind)
    else:
        if change == "empty":
            f[field] = values[:0]
        else:
            kind = np.float64 if change in ("nan", "inf", "1e30", "float") or values.dtype.kind == "S" else np.int64
            a = values.astype(kind) if values.dtype.kind != "S" else np.zeros(len(values), kind)
            a[which % len(a)] = {"nan": np.nan, "inf": np.inf, "-1": -1, "1e30": 1e30, "65535": 65535,
                                 "float": 0.5}[change]
            f[field] = a


@SETTINGS
@given(field=st.sampled_from(SHD_FIELDS), which=st.integers(0, 10_000), change=st.sampled_from(SHD_CHANGES),
       skip=st.booleans())
@pytest.mark.slow
def test_any_shd_field_changed_gives_one_line_or_names_what_it_skipped(field, which, change, skip, capsys):
    """Whatever one field holds: one line naming the file (exit 2), or a summary in which every recording was
    read or skipped by name (data.on_error=skip), with no negative duration."""
    from datafolders import shd_folder
    with tempfile.TemporaryDirectory() as tmp:
        root = shd_folder(Path(tmp) / "shd", n_train=20, n_test=20)
        target = root / "shd_test.h5"
        with h5py.File(target, "r+") as f:
            _shd_change(f, field, which, change)
        rc, out, err = cli_call(capsys, "data", "--name", "shd", "--root", root, "--set",
                                f"data.cache={Path(tmp) / 'cache'}", *(("--skip-bad",) if skip else ()))
        assert_clean_outcome(rc, err, names=(str(target),))
        if rc == 0:
            test = json.loads(out)["test"]
            assert test["samples"] + len(test["skipped"]) == 20, test
            assert all(s["file"].startswith(f"{target}#") for s in test["skipped"]), test["skipped"]
            assert test["duration_us"]["min"] >= 0 and (skip or not test["skipped"]), test


# --- NIR node fields --------------------------------------------------------------------------------------------

VALUES = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1e-3, -5.0, 1e30, 1e300, 1e-300, 3.0, 0.5, 2.0, 7.0, 1e6,
                          2.0**40])
SHAPES = st.sampled_from(["all", "one", "scalar", "empty", "extra dim", "wrong length"])


def _reshaped(old, value: float, how: str):
    arr = np.array(old, dtype=np.float64) if old is not None and np.ndim(old) else np.array([1.0])
    if how == "all":
        return np.full(arr.shape, value)
    if how == "one":
        out = arr.copy()
        out.flat[0] = value
        return out
    if how == "scalar":
        return np.float64(value)
    if how == "empty":
        return np.zeros((0,))
    if how == "extra dim":
        return np.full(arr.shape + (2,), value)
    return np.full((arr.size + 1,), value)


def _fields(g: nir.NIRGraph) -> list[tuple[str, str]]:
    skip = {"input_type", "output_type", "metadata"}
    return [(k, f) for k, node in g.nodes.items() for f in vars(node) if f not in skip
            and isinstance(getattr(node, f), (np.ndarray, float, int, tuple, list))
            and not isinstance(getattr(node, f), bool)]


def _mutate(g: nir.NIRGraph, which: int, value: float, how: str) -> tuple[str, str]:
    node, field = _fields(g)[which % len(_fields(g))]
    setattr(g.nodes[node], field, _reshaped(getattr(g.nodes[node], field), value, how))
    return node, field


GRAPHS = {"foreign": foreign_graph, "conv": conv_graph}
# the population each node's values reach (a linear node's weights are quantised with its target's threshold)
FEEDS = {"foreign": {"fc": "lif", "out": "cuba"}, "conv": {"conv": "lif1", "pool": "lif2", "flat": "lif2",
                                                            "fc": "lif2"}}
TRIED = ("nan", "inf", "-inf", "-1", "0", "0.5", "1e30")
# The stated outcome of every field set to each tried value (every element), under `verify --target reference
# --samples 2 --steps 8`. 0 / 3: a report (3: a silent readout, e.g. weights <= 0); F: exit 2 naming the node and
# the field (hardware/graph/nir_checks.py); Q: exit 2 naming the population the weights feed, which Loihi 2's 8-bit
# weights cannot reach; N: exit 2 naming the node (the same, for its own input weight or resistance); T: exit 2
# naming the node: its threshold must exceed its reset (Loihi resets to 0); R: exit 2 naming the file:
# nir's own reader refuses it (its type inference, e.g. a stride that changes the shapes downstream).
OUTCOMES = {
    ("foreign", "fc", "weight"): "F F F 3 3 0 Q", ("foreign", "fc", "bias"): "F F F 0 0 0 Q",
    ("foreign", "lif", "tau"): "F 3 F F F 3 3", ("foreign", "lif", "r"): "F F F F 3 3 N",
    ("foreign", "lif", "v_leak"): "F F F 0 0 0 0", ("foreign", "lif", "v_threshold"): "F F F F F 0 3",
    ("foreign", "lif", "v_reset"): "F F F 0 0 0 T", ("foreign", "out", "weight"): "F F F 3 3 0 Q",
    ("foreign", "cuba", "tau_syn"): "F 3 F F 0 3 3", ("foreign", "cuba", "tau_mem"): "F 3 F F F 3 3",
    ("foreign", "cuba", "r"): "F F F F 3 0 N", ("foreign", "cuba", "v_leak"): "F F F 0 0 0 0",
    ("foreign", "cuba", "v_threshold"): "F F F F F 0 3", ("foreign", "cuba", "v_reset"): "F F F 0 0 0 T",
    ("foreign", "cuba", "w_in"): "F F F 3 3 0 N",
    ("conv", "conv", "input_shape"): "R R R R R R R", ("conv", "conv", "weight"): "F F F 3 3 0 Q",
    ("conv", "conv", "stride"): "R R R R R R R", ("conv", "conv", "padding"): "R R R R R R R",
    ("conv", "conv", "dilation"): "R R R R R R R", ("conv", "conv", "groups"): "F F F F F F F",
    ("conv", "conv", "bias"): "F F F 0 0 0 Q", ("conv", "lif1", "tau"): "F 3 F F F 3 3",
    ("conv", "lif1", "r"): "F F F F 3 3 N", ("conv", "lif1", "v_leak"): "F F F 0 0 0 0",
    ("conv", "lif1", "v_threshold"): "F F F F F 0 3", ("conv", "lif1", "v_reset"): "F F F 0 0 0 T",
    ("conv", "pool", "kernel_size"): "R R R R R F R", ("conv", "pool", "stride"): "R R R R R R R",
    ("conv", "pool", "padding"): "R R R R 0 F R", ("conv", "flat", "start_dim"): "R R R R R R R",
    ("conv", "flat", "end_dim"): "R R R 0 R R R", ("conv", "fc", "weight"): "F F F 3 3 0 Q",
    ("conv", "lif2", "tau"): "F 3 F F F 3 3", ("conv", "lif2", "r"): "F F F F 3 0 N",
    ("conv", "lif2", "v_leak"): "F F F 0 0 0 0", ("conv", "lif2", "v_threshold"): "F F F F F 0 3",
    ("conv", "lif2", "v_reset"): "F F F 0 0 0 T",
}


def _verify(capsys, g: nir.NIRGraph, tmp: str) -> tuple[int, str, Path]:
    path = Path(tmp) / "g.nir"
    nir.write(path, g)
    rc, err = call(capsys, "verify", path, "--target", "reference", "--samples", "2", "--steps", "8",
                   "--out", Path(tmp) / "v")
    return rc, err, path


def test_the_outcome_table_covers_every_field_of_both_graphs():
    assert {(k, n, f) for k, make in GRAPHS.items() for n, f in _fields(make())} == set(OUTCOMES)


@pytest.mark.slow
@pytest.mark.parametrize("graph, node, field", sorted(OUTCOMES))
def test_every_field_value_gets_its_stated_outcome(graph, node, field, capsys):
    for value, outcome in zip(TRIED, OUTCOMES[graph, node, field].split()):
        g = GRAPHS[graph]()
        _mutate(g, _fields(g).index((node, field)), float(value), "all")
        with tempfile.TemporaryDirectory() as tmp:
            rc, err, path = _verify(capsys, g, tmp)
            line = err.strip().splitlines()[-1] if err.strip() else ""
            assert "Traceback" not in err, (field, value, err[-2000:])
            if outcome in "03":
                assert rc == int(outcome), (field, value, rc, line)
                continue
            assert rc == 2 and len([x for x in err.splitlines() if x.startswith("error: ")]) == 1, (field, value, rc)
            named = {"F": f"node {node!r} (", "N": f"node {node!r}:", "R": f"{path}: not a readable NIR file",
                     "T": f"node {node!r} ({type(g.nodes[node]).__name__}): v_threshold must exceed v_reset",
                     "Q": f"node {FEEDS[graph].get(node)!r}: its input weights are up to"}[outcome]
            assert named in line and (outcome != "F" or f"): {field} " in line), (field, value, line)
            assert not (Path(tmp) / "v").exists()


@pytest.mark.slow
@SETTINGS
@given(graph=st.sampled_from(sorted(GRAPHS)), which=st.integers(0, 1000), value=VALUES, how=SHAPES)
def test_random_field_values_into_verify_give_one_line_naming_what_was_changed(graph, which, value, how, capsys):
    """Any value in any shape: a report, or one line naming the node changed (or the population its weights
    feed), or the file when nir's reader refuses it; nothing written outside --out."""
    g = GRAPHS[graph]()
    node, field = _mutate(g, which, value, how)
    with tempfile.TemporaryDirectory() as tmp:
        before = tree(Path(tmp))
        rc, err, path = _verify(capsys, g, tmp)
        names = [f"node {node!r}", f"{path}: not a readable NIR file"]
        if node in FEEDS[graph]:
            names.append(f"node {FEEDS[graph][node]!r}: its input weights")
        assert_clean_outcome(rc, err, allowed=(0, 2, 3), names=tuple(names))
        if np.isnan(value) and how != "empty":
            assert rc == 2, (node, field, how, err)
        after = tree(Path(tmp))
        assert {k: v for k, v in after.items() if not k.startswith("v")} == {**before, "g.nir": after["g.nir"]}
        assert (rc == 2) == (not (Path(tmp) / "v").exists())


INT_META = st.sampled_from([np.nan, np.inf, -1, 0, 2.5, 5000, 2**40, -(2**40)])


def _check_outcome(key: str | None, new: np.ndarray, unchanged: bool, leak: bool) -> int:
    """The stated outcome of `check` after one change: 0 when nothing changed; 2 when the continuous fields and
    the integer metadata now disagree (or the metadata is not a whole number); and for the integers that no
    continuous field holds here, a whole value is read: 0 within Loihi 2's range, 1 (a violation) outside it.
    (bias_exp: the bias mantissas are 0, so the bias stays 0; bias_mant of a population without leak (dv = 0),
    whose v_leak cannot hold a bias; delay: steps 1..63, the reader refuses any other before allocating for it.)"""
    if unchanged:
        return 0
    free = ("bias_exp", "delay") + (() if leak else ("bias_mant",))
    if key in free and np.all(np.isfinite(new)) and np.all(new == np.round(new)):
        lo, hi = {"bias_exp": (0, 7), "delay": (1, 63), "bias_mant": (-4096, 4095)}[key]
        if key == "delay" and np.any((new < 1) | (new > 63)):
            return 2
        return 0 if np.all((lo <= new) & (new <= hi)) else 1
    return 2


@pytest.mark.slow
@SETTINGS
@given(which=st.integers(0, 1000), value=VALUES, how=SHAPES, meta=st.booleans(), meta_value=INT_META)
def test_random_field_values_into_check_get_their_stated_outcome(which, value, how, meta, meta_value, capsys):
    """Our graph says everything twice, in continuous fields and in integer metadata. Change one of them and
    `check` gives the outcome :func:`_check_outcome` states, naming the node (the layer, for a violation; the
    file, when nir's reader refuses it)."""
    g = to_nir(random_net(np.random.default_rng(0), sizes=(72, 40, 5), exps=(1, 0)), 1e-3, 8)
    key = None
    if meta:
        keyed = [(k, key) for k, n in g.nodes.items() for key in (n.metadata or {})
                 if key in ("weight_exp", "du", "dv", "vth", "bias_mant", "bias_exp", "delay", "weight_mantissa")]
        node, key = keyed[which % len(keyed)]
        old = np.asarray(g.nodes[node].metadata[key], dtype=np.float64)
        g.nodes[node].metadata[key] = (np.full(np.shape(g.nodes[node].metadata[key]), meta_value)
                                       if key == "weight_mantissa" else meta_value)
        new = np.asarray(g.nodes[node].metadata[key], dtype=np.float64)
    else:
        node, field = _fields(g)[which % len(_fields(g))]
        old = np.asarray(getattr(g.nodes[node], field), dtype=np.float64)
        _mutate(g, which, value, how)
        new = np.asarray(getattr(g.nodes[node], field), dtype=np.float64)
    leak = (g.nodes[node].metadata or {}).get("dv", 1) != 0
    want = _check_outcome(key, new, old.shape == new.shape and np.array_equal(old, new), leak)
    layer = str((g.nodes[node].metadata or {}).get("layer", node))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        nir.write(path, g)
        before = tree(Path(tmp))
        rc, out, err = call_out(capsys, "check", path)
        assert_clean_outcome(rc, err, allowed=(want,), names=(f"node {node!r}", f"{path}: not a readable NIR"))
        if want == 1:
            assert out.startswith("violation: ") and any(n in out for n in (layer, node, f"->{node}")), out
        assert tree(Path(tmp)) == before
