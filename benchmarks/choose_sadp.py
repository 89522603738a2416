"""SADP's default chosen on validation: which ``select.mix`` trains best, judged on the validation curves of the
Fashion pruning runs (benchmarks/pruning.py), never on their test accuracy.

Criterion (written down before the r = 0.3 runs of mix 0.5 had finished; the r = 0.5 runs of both and their test
accuracies were known, see docs/benchmarks/fashion.md): per run, the float (QAT) accuracy on the 6,000 validation
recordings averaged over its last 3 epochs (less noisy than one epoch); per candidate, the mean of those over
seeds 0 and 1 and over the ratios r = 0.3 and 0.5, since one default serves both. A candidate is judged only
when it has every (ratio, seed) run. The sampling error of one run's figure on 6,000 recordings is printed beside
the differences, so a win smaller than it reads as what it is. Test accuracies are not read here.

    P=benchmarks/results/pruning_fashion_parts
    .venv/bin/python benchmarks/choose_sadp.py --runs $P/s0.json $P/s1.json $P/mix_s0.json $P/mix_s1.json \
        $P/mix03_s01.partial.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import harness  # noqa: E402  (benchmarks/harness.py: atomic results files)

# row name in the parts as they ran (mix 0.2 was the default then; the merged pruning_fashion.json lists them as
# sadp+mix0.2 and sadp): select.mix it ran with
CANDIDATES = {"sadp": 0.2, "sadp+mix0.5": 0.5}
RATIOS, SEEDS, VAL_SAMPLES = (0.3, 0.5), (0, 1), 6000


def val_score(row: dict) -> float:
    return float(np.mean(row["curve"]["accuracy_float"][-3:]))


def choose(rows: list[dict]) -> dict:
    table = {}
    for name, mix in CANDIDATES.items():
        runs = {(r["ratio"], r["seed"]): val_score(r) for r in rows if r["method"] == name}
        table[name] = {"mix": mix, "runs": {f"r={k[0]:g} seed {k[1]}": round(v, 5) for k, v in sorted(runs.items())},
                       "complete": all((r, s) in runs for r in RATIOS for s in SEEDS)}
        if table[name]["complete"]:
            table[name]["score"] = float(np.mean([runs[(r, s)] for r in RATIOS for s in SEEDS]))
            table[name]["by_ratio"] = {f"{r:g}": float(np.mean([runs[(r, s)] for s in SEEDS])) for r in RATIOS}
    judged = {n: t for n, t in table.items() if t["complete"]}
    best = max(judged, key=lambda n: judged[n]["score"]) if len(judged) == len(CANDIDATES) else None
    level = judged[best]["score"] if best else float(np.mean([t["score"] for t in judged.values()] or [0.5]))
    return {"candidates": table, "chosen": best, "chosen_mix": CANDIDATES.get(best),
            "one_run_sampling_error_pt": round(harness.sampling_error(level, VAL_SAMPLES), 2)}


def text(result: dict) -> str:
    lines = ["SADP's select.mix chosen on the Fashion validation curves (float accuracy on 6,000 validation "
             "recordings, mean of the last 3 epochs; mean over seeds 0, 1 and ratios 0.3, 0.5)"]
    for name, t in result["candidates"].items():
        lines.append(f"  mix {t['mix']:g} ({name}): " + ", ".join(f"{k} {v:.4f}" for k, v in t["runs"].items())
                     + (f"; mean {t['score']:.4f} (r=0.3 {t['by_ratio']['0.3']:.4f}, r=0.5 "
                        f"{t['by_ratio']['0.5']:.4f})" if t["complete"] else "; incomplete: not judged"))
    if result["chosen"]:
        scores = sorted((t["score"] for t in result["candidates"].values()), reverse=True)
        lines.append(f"  chosen: select.mix={result['chosen_mix']:g}, ahead by {100 * (scores[0] - scores[1]):.2f} "
                     f"points on validation (one run's sampling error on 6,000 recordings: "
                     f"{result['one_run_sampling_error_pt']:.2f} points)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="pruning results or partial files")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/choose_sadp"))
    args = ap.parse_args()
    rows = [r for p in args.runs for r in json.loads(p.read_text())["rows"]]
    seen, unique = set(), []
    for r in rows:                      # a part and the merged file may list the same run
        if (key := (r["method"], r["ratio"], r["seed"])) not in seen:
            seen.add(key)
            unique.append(r)
    result = choose(unique) | {"runs_from": [str(p) for p in args.runs]}
    print(text(result))
    harness.write_json(args.out.with_suffix(".json"), result, indent=2)
    harness.write_text(args.out.with_suffix(".txt"), text(result) + "\n")


if __name__ == "__main__":
    main()
