"""Shared test helpers. Lava's wheels install a top-level ``tests`` package: never import ours as ``tests.*``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def cli(*args, timeout: float = 600, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a fresh process (what a user's shell runs): its exit status and output."""
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


# quick tier: a command in this process (pipeline.cli.main); slow tier: the same case in a fresh process
FRESH = pytest.mark.parametrize("fresh", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["here", "process"])


def runner(fresh: bool, capsys):
    """:func:`cli` (a fresh process), or the same command in this process, reported alike (returncode, stdout,
    stderr)."""
    if fresh:
        return cli

    def here(*args):
        rc, out, err = call(capsys, *args)
        return SimpleNamespace(returncode=rc, stdout=out, stderr=err)
    return here


def session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid`` (a command started with start_new_session)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry))
    return found


@pytest.fixture
def real_nmnist() -> Path:
    path = SHARED_DATA / "nmnist_digit4.bin"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def benchmark_script():
    """Import a script of benchmarks/ as a module (the scripts import each other as top-level names)."""
    import importlib
    import sys
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module


def random_net(rng: np.random.Generator, sizes=(72, 40, 30, 5), exps=(1, 0, -2)):
    """A small deployed network with varied integer parameters, including the decay edge cases."""
    from hardware.chip.loihi2 import Limits
    from models.neuron import CubaParams
    from models.snn import DeployedNet, IntLayer
    bits = Limits().state_bits
    neurons = (CubaParams(1024, 256, 100, state_bits=bits), CubaParams(4095, 0, 50, state_bits=bits),
               CubaParams(0, 4095, 20, state_bits=bits))
    layers = tuple(IntLayer(f"fc{k + 1}", rng.integers(-128, 128, (o, i)).astype(np.int8), e, p)
                   for k, (i, o, e, p) in enumerate(zip(sizes[:-1], sizes[1:], exps, neurons)))
    return DeployedNet((2, 6, 6), layers)


@pytest.fixture(scope="session")
def quick_cache(tmp_path_factory) -> Path:
    """One data cache for the quick runs of a test session: the simulated digits are the same every time, and
    simulating them takes seconds. Tests that damage a cache use their own."""
    return tmp_path_factory.mktemp("quick-cache")


@pytest.fixture(scope="session")
def quick_run_all(tmp_path_factory, quick_cache):
    """One `run --quick --target all` (reference, Lava, onnxruntime, netx) for the tests that read a finished run
    folder without changing it: (folder, printed stdout)."""
    import subprocess
    import sys
    out = tmp_path_factory.mktemp("quick-all") / "run"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--quick", "--target", "all", "--out", str(out),
                           "--set", f"data.cache={quick_cache}"], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def call(capsys, *args) -> tuple[int, str, str]:
    """The command line in this process (``pipeline.cli.main``): exit status, stdout, stderr. A traceback fails
    the calling test as an exception."""
    from pipeline.cli import main
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:           # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, *args, fragments=()) -> str:
    """Exit 2 with one 'error:' line, the last (progress notes may come before it), holding every fragment."""
    rc, out, err = call(capsys, *args)
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert rc == 2 and errors == lines[-1:] and "Traceback" not in err, (rc, err[-2000:])
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


def verified(net, x, backends=("lava",), workers: int = 2, chunk: int = 250, folder=None):
    """The verification stage on ``net``: the integer reference (run on past each sample's end) as expected, the
    named real backends compared with it at every step they compute."""
    from hardware.backends import BACKENDS, Options
    from hardware.judge import equivalence
    expected = equivalence.reference_expected(net, x, "golden", "the integer reference")
    return equivalence.verify(net, x, expected, [BACKENDS[b] for b in backends],
                              Options(folder, workers, chunk, progress=False))
