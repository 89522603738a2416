"""The speed-up a user gets from ``run``: full data against SADP, as a new user would try it.

Protocol: ``python -m pipeline run --target reference`` on the built-in digits with the defaults, once with full
data and once with ``--set select.method=sadp`` (r = 0.5), for each seed (``train.seed`` and ``select.seed``).
From each run's report.json: the training stage's wall time (``timings_s.train_s``: what the user waits for),
split as the summary splits it into the epochs themselves (what benchmarks/pruning.py compares), the validation
checks (``train.eval_every``, ``train.eval_samples``) and the rest; the examples processed; the deployed model's
test accuracy. Speed-ups are full data's time over SADP's, same seed, for the whole stage and for the epochs.

    .venv/bin/python benchmarks/run_speedup.py          # about 10 minutes on 2 cores
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)


def one(method: str, seed: int, folder: Path, extra: list[str]) -> dict:
    out = folder / f"{method}-{seed}"
    items = [f"train.seed={seed}", f"select.seed={seed}", f"select.method={method}", *extra]
    cmd = [sys.executable, "-m", "pipeline", "run", "--target", "reference", "--out", str(out)]
    cmd += [a for item in items for a in ("--set", item)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    t = report["training"]
    summary_line = next(line for line in proc.stdout.splitlines() if line.startswith("training:"))
    return {"method": method, "seed": seed, "command_seconds": round(wall, 1),
            "train_s": round(report["timings_s"]["train_s"], 2), "epochs_s": round(sum(t["epoch_seconds"]), 2),
            "eval_s": round(t["eval_seconds"], 2), "eval_samples": t["eval_samples"],
            "examples_processed": t["examples_processed"], "work_fraction": round(t["work_fraction"], 4),
            "accuracy": report["accuracy"]["golden"], "summary_line": summary_line}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/run_speedup"))
    args = ap.parse_args()
    rows = []
    # A kill (SIGTERM) unwinds like Ctrl-C: subprocess.run kills the child and the temporary runs are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for method in ("full", "sadp"):
                rows.append(one(method, seed, Path(tmp), args.overrides))
                print(json.dumps(rows[-1]), flush=True)
    lines = [f"{'method':6s} {'seed':>4s} {'train s':>8s} {'epochs s':>9s} {'checks s':>9s} {'other s':>8s} "
             f"{'examples':>9s} {'accuracy':>8s}"]
    for r in rows:
        lines.append(f"{r['method']:6s} {r['seed']:4d} {r['train_s']:8.1f} {r['epochs_s']:9.1f} {r['eval_s']:9.1f} "
                     f"{r['train_s'] - r['epochs_s'] - r['eval_s']:8.1f} {r['examples_processed']:9d} "
                     f"{r['accuracy']:8.4f}")
    pairs = [(f, s) for f in rows if f["method"] == "full" for s in rows
             if s["method"] == "sadp" and s["seed"] == f["seed"]]
    stage = float(np.mean([f["train_s"] / s["train_s"] for f, s in pairs]))
    epochs = float(np.mean([f["epochs_s"] / s["epochs_s"] for f, s in pairs]))
    work = float(np.mean([f["examples_processed"] / s["examples_processed"] for f, s in pairs]))
    lines.append(f"sadp r=0.5 vs full, mean over seeds {args.seeds}: training stage {stage:.2f}x, epochs {epochs:.2f}x, "
                 f"work {work:.2f}x (examples); accuracy {np.mean([s['accuracy'] for _, s in pairs]):.4f} vs "
                 f"{np.mean([f['accuracy'] for f, _ in pairs]):.4f}")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    harness.write_json(args.out.with_suffix(".json"), {"args": vars(args) | {"out": str(args.out)}, "rows": rows,
                                                         "stage_speedup": stage, "epochs_speedup": epochs,
                                                         "work_speedup": work}, indent=1)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")


if __name__ == "__main__":
    main()
