"""The README's main command, measured: ``run --target all`` with the default configuration, then ``recheck`` of a
copy of its folder without model.pt, config.json or the dataset (as a hardware team would).

Writes benchmarks/results/default_run.json (report.json's verdict, accuracy, timings, Loihi 2 activity and the
recheck's wall time and peak memory), default_run_summary.txt (the run's printed summary, verbatim),
default_run_certificate.json (the certificate, verbatim) and default_run_recheck.txt (recheck's output).

    .venv/bin/python benchmarks/default_run.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "default_run"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="keep the run folder here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "default"
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pipeline", "run", "--target", "all", "--out", str(folder)],
                             cwd=ROOT, capture_output=True, text=True)
        run_s = time.perf_counter() - t0
        if run.returncode not in (0, 1, 3):
            raise SystemExit(run.stderr[-3000:])
        copy = Path(tmp) / "handed-over"
        shutil.copytree(folder, copy)
        for name in ("model.pt", "config.json", "report.json"):
            (copy / name).unlink()
        t0 = time.perf_counter()
        # a wrapper process whose children are recheck and its workers: their largest resident set
        wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, "
                   "text=True); sys.stdout.write(p.stdout); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")
        re = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "pipeline", "recheck", str(copy),
                             "--workers", "2"], cwd=ROOT, capture_output=True, text=True)
        recheck_s = time.perf_counter() - t0
        lines = re.stdout.rstrip().splitlines()
        peak, re_out = int(lines[-1]), "\n".join(lines[:-1]) + "\n"
        report = json.loads((folder / "report.json").read_text())
        cert = (folder / "certificate.json").read_text()
        summary = run.stdout[run.stdout.index("test accuracy"):].replace(str(folder), "runs/default")
        harness.write_text(OUT.with_name("default_run_summary.txt"), summary)
        harness.write_text(OUT.with_name("default_run_certificate.json"), cert.replace(str(folder), "runs/default"))
        harness.write_text(OUT.with_name("default_run_recheck.txt"), re_out.replace(str(copy), "handed-over"))
        t = report["training"]
        result = {"protocol": f"python -m pipeline run --target all (defaults: built-in digits, {t['train_samples']} "
                              f"train / {t['val_samples']} validation / {report['test_samples']} test, conv 16/32, "
                              f"{t['epochs']} epochs), then recheck --workers 2 of a copy without model.pt, "
                              "config.json and report.json; 2 cores, nothing else running",
                  "exit_status": run.returncode, "verdict": report["verdict"], "accuracy": report["accuracy"],
                  "timings_s": report["timings_s"], "run_wall_s": round(run_s, 1),
                  "loihi2": {"cores": report["loihi2"]["resources"]["cores"],
                             "per_inference": report["loihi2"]["activity"]["per_inference"]},
                  "backends": {b: {k: r[k] for k in ("compared", "identical", "tail_positions_compared",
                                                     "positions_compared")}
                               for b, r in report["backends"].items()},
                  "epoch_val_accuracy_float": report["training"]["epoch_val_accuracy_float"],
                  "recheck": {"exit_status": re.returncode, "wall_s": round(recheck_s, 1),
                              "peak_rss_mb": round(peak / 1024), "vectors_kb": round((folder / "vectors.h5")
                                                                                      .stat().st_size / 1024)}}
        harness.write_json(OUT.with_suffix(".json"), result, indent=2)
        print(summary)
        print(re_out)
        print(json.dumps(result["recheck"]))


if __name__ == "__main__":
    main()
