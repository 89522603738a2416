"""Where an optimised set starts (``distill.init``: random real recordings or the herding coreset), chosen on the
validation split, never on test accuracy.

Criterion (written down before the Fashion IPC 10 and 50 runs of the herding start had finished; the spoken
digits' runs and their test accuracies had been printed, see docs/methods/distillation.md): per dataset and IPC,
PACE's kept set, i.e. the best validation check of its run (``distill.keep=best``: a fresh SNN trained on the set
under the distillation benchmark's protocol, seed 0, scored on the validation split); per start, the mean of those
over every (dataset, IPC) that both starts have. The check's sampling error on each validation split is printed
beside the differences. Checks come from a distillation results JSON (rows' ``checks``) or, for parts run before
the rows kept them, from the check lines of the part's log (``*_checks.txt``).

    S=benchmarks/results/distillation_spoken_parts F=benchmarks/results/distillation_fashion_parts
    .venv/bin/python benchmarks/choose_init.py --run spoken_digits:random:$S/a_checks.txt \\
        --run spoken_digits:random:$S/b.json --run spoken_digits:herding:$S/herd.json \\
        --run fashion:random:$F/keep_checks.txt --run fashion:herding:$F/herd.json
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

import harness  # noqa: E402  (benchmarks/harness.py: atomic results files)

VALIDATION = {"spoken_digits": 440, "fashion": 6000}      # validation recordings of each built-in set
CHECK = re.compile(r"distillation check at step (\d+): validation accuracy ([\d.]+)")
RESULT = re.compile(r"^IPC (\d+) (\S+): accuracy")


def checks(path: Path, method: str = "pace") -> dict[int, list[float]]:
    """IPC -> validation accuracies of ``method``'s checks, from a results JSON or a part's check lines."""
    if path.suffix == ".json":
        return {r["ipc"]: [a for _, a in r["checks"]] for r in json.loads(path.read_text())["rows"]
                if r["method"] == method and r.get("checks")}
    found, pending = {}, []
    for line in path.read_text().splitlines():
        if m := CHECK.search(line):
            pending.append(float(m.group(2)))
        elif m := RESULT.match(line):
            if m.group(2) == method and pending:     # a set's checks are printed just before its result line
                found[int(m.group(1))] = pending
            pending = []
    return found


def choose(runs: list[tuple[str, str, Path]]) -> dict:
    best: dict[tuple[str, str, int], float] = {}
    for dataset, start, path in runs:
        for ipc, accs in checks(path).items():
            best[(dataset, start, ipc)] = max(accs)          # the set distill.keep=best stores
    starts = sorted({s for _, s, _ in best})
    shared = sorted({(d, i) for d, _, i in best if all((d, s, i) in best for s in starts)})
    scores = {s: float(np.mean([best[(d, s, i)] for d, i in shared])) if shared else None for s in starts}
    chosen = max(starts, key=lambda s: scores[s]) if shared and len(starts) > 1 else None
    return {"kept_validation": [{"dataset": d, "start": s, "ipc": i, "accuracy": best[(d, s, i)]}
                                for (d, s, i) in sorted(best)],
            "compared": [list(x) for x in shared], "scores": scores, "chosen": chosen}


def text(result: dict) -> str:
    rows = {(r["dataset"], r["ipc"]): {} for r in result["kept_validation"]}
    for r in result["kept_validation"]:
        rows[(r["dataset"], r["ipc"])][r["start"]] = r["accuracy"]
    lines = ["PACE's start (distill.init) chosen on validation: the kept set's validation accuracy (best check, "
             "seed 0), per dataset and IPC"]
    for (dataset, ipc), by in sorted(rows.items()):
        se = float(np.sqrt(0.25 / VALIDATION[dataset])) if dataset in VALIDATION else None
        diff = (f"; herding - random {100 * (by['herding'] - by['random']):+.2f} pt"
                if {"herding", "random"} <= by.keys() else "")
        lines.append(f"  {dataset} IPC {ipc}: " + ", ".join(f"{s} {a:.4f}" for s, a in sorted(by.items())) + diff
                     + (f" (one check's sampling error at most {100 * se:.2f} pt)" if se else ""))
    scores = result["scores"]
    if result["chosen"]:
        others = sorted(scores.values(), reverse=True)
        lines.append(f"  mean over the {len(result['compared'])} (dataset, IPC) both starts have: " + ", ".join(
            f"{s} {v:.4f}" for s, v in sorted(scores.items())) + f"; chosen: distill.init={result['chosen']}, "
            f"ahead by {100 * (others[0] - others[1]):.2f} points")
    else:
        lines.append("  chosen: none (no (dataset, IPC) that both starts have)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, metavar="DATASET:START:FILE")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/choose_init"))
    args = ap.parse_args()
    runs = [(d, s, Path(f)) for d, s, f in (r.split(":", 2) for r in args.run)]
    result = choose(runs) | {"runs": args.run}
    print(text(result))
    harness.write_json(args.out.with_suffix(".json"), result, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text(result) + "\n")


if __name__ == "__main__":
    main()
