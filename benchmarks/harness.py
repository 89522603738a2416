"""What every benchmark repeats, once: results files written atomically (an interrupted benchmark never leaves a
half-written table), resumable parts (rows saved to ``OUT.partial.json`` as each run ends; a rerun skips what is
there), merging parts run apart (``--merge``), the arguments every comparison takes (``--seeds``,
``--threads``, ``--out``), and the one rule for a difference "beyond the spread" of seeds and of the test split's
sampling (:func:`paired`). Each benchmark keeps only its protocol: what it runs, its table, its verdicts."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def write_text(path: Path, text: str) -> None:
    """``text`` at ``path``, atomically (a temporary file beside it, then renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: Path, obj, indent: int | None = 1) -> None:
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def partial_path(out: Path) -> Path:
    return Path(out).with_suffix(".partial.json")


def load_partial(out: Path, default):
    """What the part at ``out`` saved so far (``default`` when nothing was)."""
    p = partial_path(out)
    return json.loads(p.read_text()) if p.exists() else default


def save_partial(out: Path, state) -> None:
    write_json(partial_path(out), state, indent=None)


def load_parts(outs: list[Path]) -> list:
    """The saved state of each part (``--merge A B``: the ``OUT`` each part ran with)."""
    return [json.loads(partial_path(o).read_text()) for o in outs]


def common_args(ap: argparse.ArgumentParser, out: str, seeds=(0, 1), threads: int = 2, merge: bool = True) -> None:
    """``--seeds``, ``--threads``, ``--out`` and (``merge``) ``--merge``, as every comparison over seeds takes them."""
    ap.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    ap.add_argument("--threads", type=int, default=threads, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=Path(out))
    if merge:
        ap.add_argument("--merge", type=Path, nargs="+", help="parts to join (the --out each part ran with)")


# --- one rule for "beyond the spread", shared by the benchmarks that compare methods over seeds -----------------

# test-split sizes of the built-in sets, for results recorded before each row said its own ("test_samples")
TEST_SAMPLES = {"digits": 1000, "fashion": 10_000, "spoken_digits": 1080}


def sampling_error(accuracy: float, samples: int) -> float:
    """Standard error, in points, of an accuracy measured on ``samples`` test recordings (binomial): how far the
    figure would move on another draw of a test split of that size (0.32 pt at 0.88 on 10,000)."""
    return 100 * float(np.sqrt(accuracy * (1 - accuracy) / samples))


def paired(mine: list[float], theirs: list[float], test_samples: int | None = None
           ) -> tuple[float, list[float], float, bool]:
    """(mean difference in points, per-seed differences, spread, beyond it) of two methods' accuracies listed
    seed by seed in the same order.

    The spread is the larger of the seed spread (the larger standard deviation over seeds of the two methods, as
    the tables print it) and, given ``test_samples``, the test split's own sampling error at the methods' mean
    accuracy (:func:`sampling_error`): two seeds that agree by chance do not make a difference smaller than what
    the test split can resolve. A difference is beyond the spread when the mean difference is larger and every
    seed's difference has its sign. Judged as printed, at 2 decimals in points, so a figure on a line never reads
    otherwise than it was judged.
    """
    diffs = [100 * (a - b) for a, b in zip(mine, theirs, strict=True)]
    mean = round(float(np.mean(diffs)), 2)
    spread = 100 * float(max(np.std(mine), np.std(theirs)))
    if test_samples:
        spread = max(spread, sampling_error(float(np.mean(list(mine) + list(theirs))), test_samples))
    spread = round(spread, 2)
    beyond = abs(mean) > spread and all(np.sign(d) == np.sign(mean) for d in diffs)
    return mean, diffs, spread, beyond
