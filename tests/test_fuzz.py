"""Property-based: random bytes into every event reader, random field values into NIR nodes for `verify` and
`check`. Whatever comes in: one line, exit 2 (or a normal result), no traceback, nothing outside --out touched.

Examples are derandomised so that CI is repeatable; set NMPIPE_FUZZ_EXAMPLES (and NMPIPE_FUZZ_RANDOM=1 for fresh
draws) to search further than the suite's time budget allows."""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import random_net
from datafolders import cifar10dvs_folder, gesture_folder, gesture_tonic_folder, nmnist_folder, random_events
from graphs import conv_graph, foreign_graph
from hypothesis import HealthCheck, given, settings, strategies as st

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
                          SHARED_AEDAT4.read_bytes()[:20000] if SHARED_AEDAT4.exists() else b"",
                          ("data.test_fraction=0.5",)),
    "dvsgesture-aedat31": ("dvsgesture", gesture_folder, "user01_fluorescent.aedat",
                           aedat31.encode_polarity(_EV, packet_size=50), ()),
    "dvsgesture-npy": ("dvsgesture", gesture_tonic_folder, "ibmGestureTrain/user01_led/0.npy",
                       _npy_bytes(np.stack([_EV["x"], _EV["y"], _EV["p"], _EV["t"] / 1000.0], axis=1)), ()),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_random_bytes_into_every_event_reader_give_one_line_or_a_result(fmt, capsys):
    name, make, rel, valid, extra = FORMATS[fmt]
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


@SETTINGS
@given(make=st.sampled_from([foreign_graph, conv_graph]), which=st.integers(0, 1000), value=VALUES, how=SHAPES)
def test_random_field_values_into_verify_give_one_line_or_a_report(make, which, value, how, capsys):
    g = make()
    node, field = _mutate(g, which, value, how)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        nir.write(path, g)
        before = tree(Path(tmp))
        rc, err = call(capsys, "verify", path, "--target", "reference", "--samples", "2", "--steps", "8",
                       "--out", Path(tmp) / "v")
        assert_clean_outcome(rc, err, allowed=(0, 2, 3), names=(f"node {node!r}", str(path), "node "))
        if np.isnan(value) and how != "empty":
            assert rc == 2, (node, field, how, err)
        after = tree(Path(tmp))
        assert {k: v for k, v in after.items() if not k.startswith("v")} == before     # only --out was written
        assert (rc == 2) == (not (Path(tmp) / "v").exists())


INT_META = st.sampled_from([np.nan, np.inf, -1, 0, 2.5, 5000, 2**40, -(2**40)])


@SETTINGS
@given(which=st.integers(0, 1000), value=VALUES, how=SHAPES, meta=st.booleans(), meta_value=INT_META)
def test_random_field_values_into_check_give_one_line_or_a_result(which, value, how, meta, meta_value, capsys):
    g = to_nir(random_net(np.random.default_rng(0), sizes=(72, 40, 5), exps=(1, 0)), 1e-3, 8)
    if meta:
        keyed = [(k, key) for k, n in g.nodes.items() for key in (n.metadata or {})
                 if key in ("weight_exp", "du", "dv", "vth", "bias_mant", "bias_exp", "delay", "weight_mantissa")]
        node, key = keyed[which % len(keyed)]
        g.nodes[node].metadata[key] = (np.full(np.shape(g.nodes[node].metadata[key]), meta_value)
                                       if key == "weight_mantissa" else meta_value)
    else:
        node, _ = _mutate(g, which, value, how)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        nir.write(path, g)
        before = tree(Path(tmp))
        rc, err = call(capsys, "check", path)
        assert_clean_outcome(rc, err, allowed=(0, 1, 2), names=(f"node {node!r}", str(path), "node "))
        assert tree(Path(tmp)) == before
