"""Set-up of the Fashion-MNIST benchmarks: Debian's dataset-fashion-mnist, simulated into 70,000 recordings.

1. The IDX files of Debian's ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist). When they are
   missing this script installs the package (``apt-get install -y dataset-fashion-mnist``, as root), or, without
   root, unpacks the package it downloads with ``apt-get download`` into the pipeline's cache and uses that folder
   (``data.root``); when neither works it prints the one command to run and exits 2.
2. The 60,000 + 10,000 recordings simulated once (``pipeline/data/saccades.py``, 2 worker processes), timed.
3. The framed tensors of both splits (the N-MNIST reader, then framing, cached as .npz), timed, with their size
   in memory.

Writes ``benchmarks/results/fashion_data.json`` (seconds per stage, recordings, events, bytes) and prints the
``--set data.root=...`` to use when the files are not in the system folder. The main command and the test suite
never need any of this.

    .venv/bin/python benchmarks/fashion_data.py
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.config import RunConfig, apply_overrides
from pipeline.data import digits, registry, sets
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

PACKAGE = "dataset-fashion-mnist"
INSTALL = f"apt-get install -y {PACKAGE}"


def _has_files(root: Path) -> bool:
    return all((root / n).is_file() for n in digits.FASHION_FILES)


def ensure_files() -> Path:
    """The folder holding the four IDX files, installing or unpacking Debian's package when needed."""
    if _has_files(digits.FASHION_ROOT):
        return digits.FASHION_ROOT
    unpacked = digits.default_cache() / "fashion-mnist-deb"
    local = unpacked / digits.FASHION_ROOT.relative_to("/")
    if _has_files(local):
        return local
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {PACKAGE} ({INSTALL})", flush=True)
        if subprocess.run(INSTALL.split(), check=False).returncode == 0 and _has_files(digits.FASHION_ROOT):
            return digits.FASHION_ROOT
    if shutil.which("apt-get") and shutil.which("dpkg-deb"):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"downloading {PACKAGE} (apt-get download) and unpacking it into {unpacked}", flush=True)
            if subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=False).returncode == 0:
                debs = sorted(Path(tmp).glob(f"{PACKAGE}_*.deb"))
                if debs:
                    unpacked.parent.mkdir(parents=True, exist_ok=True)
                    if unpacked.exists():  # not ours to replace: say so instead of failing inside os.replace
                        print(f"{unpacked}: exists without {', '.join(digits.FASHION_FILES)}; "
                              "remove it or set data.root", file=sys.stderr)
                        sys.exit(2)
                    part = Path(tempfile.mkdtemp(prefix=unpacked.name + ".", dir=unpacked.parent))
                    if subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(part)], check=False).returncode == 0:
                        os.replace(part, unpacked)
                        if _has_files(local):
                            return local
                    else:
                        shutil.rmtree(part, ignore_errors=True)
    print(f"{digits.FASHION_ROOT}: Fashion-MNIST not found and it could not be installed here; run\n"
          f"    sudo {INSTALL}\nor set data.root to a folder with {', '.join(digits.FASHION_FILES)}",
          file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="data settings of the benchmarks that will read the cache (default: the whole dataset)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fashion_data.json"))
    args = ap.parse_args()
    root = ensure_files()
    items = ["data.name=fashion"] + ([f"data.root={root}"] if root != digits.FASHION_ROOT else []) + args.overrides
    cfg = registry.resolve(apply_overrides(RunConfig(), items)).data
    built = not (registry.cache_dir(cfg) / f"fashion-v{digits.VERSION}-seed{cfg.seed}-{cfg.n_train}-{cfg.n_test}"
                 ).is_dir()
    t0 = time.perf_counter()
    spec = registry.DATASETS["fashion"]
    train_list, test_list = spec.list_split(cfg, "train"), spec.list_split(cfg, "test")   # simulates on first use
    simulate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = sets.load(cfg)
    frame_s = time.perf_counter() - t0
    splits = {"train": data.train, "validation": data.val, "test": data.test}
    result = {
        "data_root": str(root), "settings": items,
        "simulated_now": built, "cpu_cores": os.cpu_count(), "simulation_workers": 2,
        "recordings": len(train_list.recordings) + len(test_list.recordings),
        "simulate_seconds": round(simulate_s, 1) if built else None,
        "frame_seconds": round(frame_s, 1),
        "samples": {k: int(len(s.labels)) for k, s in splits.items()},
        "mean_events": {k: float(s.n_events.mean()) for k, s in splits.items()},
        "frames_shape": list(data.train.frames.shape[1:]), "frames_dtype": str(data.train.frames.dtype),
        "frames_bytes": int(sum(s.frames.nbytes for s in splits.values())),
    }
    result["frames_gb"] = round(result["frames_bytes"] / 1e9, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out, result, indent=1)
    print(json.dumps(result, indent=1))
    if root != digits.FASHION_ROOT:
        print(f"the benchmarks need: --set data.root={root}")


if __name__ == "__main__":
    main()
