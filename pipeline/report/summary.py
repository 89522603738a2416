"""The printed summaries of run, verify and recheck, rendered from their typed results."""
from __future__ import annotations

from pathlib import Path

from hardware.judge.results import BackendComparison, Verification
from pipeline.runfolder import listing


def backend_line(b: BackendComparison, what: str = "samples") -> str:
    """One backend's comparison in one line, saying what it was compared against when that is not a check."""
    tail = ((", past each sample's end included" if b.tail_samples == b.compared else
             f", past the end of {b.tail_samples} of the {b.compared} samples included")
            + f" ({b.tail_positions:,} positions there)" if b.tail_positions else "")
    if b.certifies:
        head = (f"{b.backend:>9}: {b.identical}/{b.compared} {what} spike-identical in every layer and step it "
                f"computed{tail} [{b.verdict}]")
    elif b.verdict in ("REPRODUCED", "NOT REPRODUCED"):
        head = (f"{b.backend:>9}: {b.identical}/{b.compared} {what} reproduced its own stored output [{b.verdict}] "
                "(a reproduction, not an independent check)")
    else:
        head = f"{b.backend:>9}: {b.identical}/{b.compared} {what} spike-identical [{b.why_not}]"
    return head + (f"; first divergence: {b.first_divergence}" if b.first_divergence else "")


def silence_lines(v: Verification) -> list[str]:
    """The warning for every silent layer, and what a silent readout means for the verdict."""
    lines = [f"WARNING: layer {L.layer} never spiked in any of the {v.samples} compared samples: {L.cause}"
             if L.spiking else f"WARNING: readout {L.layer} received no spike in any of the {v.samples} compared "
                               f"samples: {L.cause}" for L in v.silent_layers]
    if v.verdict == "SILENT":
        lines.append("SILENT: every readout stayed silent, so identical spikes certify nothing; exit status 3")
    if v.verdict == "REFERENCE ONLY":
        lines.append("REFERENCE ONLY: no backend was compared with an independent implementation; nothing is "
                     "certified")
    return lines


def verification_lines(v: Verification) -> list[str]:
    lines = [backend_line(b) for b in v.backends]
    lines += [f"  not compared: {line}" for line in v.not_compared]
    return lines


def training_lines(t: dict, train_s: float) -> list[str]:
    """Where the training time went: the epochs themselves (what a pruning benchmark compares), the validation
    checks beside them, and the rest (building the model, ...); the share of full data's work; the curve."""
    if not t.get("epoch_seconds"):
        return []
    epochs_s, eval_s = sum(t["epoch_seconds"]), t.get("eval_seconds", 0.0)
    work = t.get("work_fraction")
    pruned = (f"; selection {t['method']} at ratio {t['ratio']:g}: {t['examples_processed']:,} examples, "
              f"{work:.2f}x of full data's {t['epochs']} epochs" if t.get("method", "full") != "full" and work
              else "")
    lines = [f"training: {train_s:.1f} s = epochs {epochs_s:.1f} s + validation checks {eval_s:.1f} s "
             f"+ other {max(0.0, train_s - epochs_s - eval_s):.1f} s{pruned}"]
    if t.get("trainer_computes"):
        lines.append(f"trainer: {t['trainer_computes']}")
    if t.get("delays"):
        d = t["delays"]
        each = [f"{L['layer']} mean {L['mean']:.1f}, longest {L['max']}, {100 * L['at_zero']:.0f}% at 0"
                for L in d["layers"]]
        lines.append(f"delays learnt (0..{d['max_delay']} steps, one per {d['kind']}): " + "; ".join(each)
                     + " (histograms: delays.png)")
    curve = t.get("epoch_val_accuracy_float", [])
    at = t.get("eval_epochs") or list(range(1, len(curve) + 1))
    if curve:
        marks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1})
        lines.append(f"float validation accuracy ({t.get('eval_samples') or t.get('val_samples')} samples) by epoch "
                     + ", ".join(f"{at[k]}: {curve[k]:.3f}" for k in marks))
    return lines


def run_summary(report, out: Path) -> str:
    """``run``'s summary (a :class:`pipeline.report.report.RunReport`)."""
    v = report.verification
    acc = ", ".join(f"{k} {a:.4f}" for k, a in report.accuracy.items())
    asked = (f"; {report.samples_requested} asked for, the test split has {report.test_samples}"
             if report.samples_requested > report.test_samples else "")
    lines = [f"test accuracy ({report.test_samples} samples{asked}): {acc}"]
    u = report.undecided
    if u.get("samples"):
        lines.append(f"  undecided: {u['samples']} of {report.test_samples} samples have no output spike or a tie "
                     "for the most (class by lowest index, model.nir's declared readout; "
                     f"{u['correct_by_lowest_index']} of them right so); golden accuracy "
                     f"{u['accuracy_counting_them_wrong']:.4f} counting them wrong")
    lines += training_lines(report.training, report.timings_s.get("train_s", 0.0))
    lines.append(f"expected spikes: {v.expected}")
    lines += verification_lines(v)
    a = report.loihi2["activity"]["per_inference"]
    r = report.loihi2["resources"]
    lines.append(f"Loihi 2: {r['cores']} of {r['resources']['cores_per_chip']} cores; per inference "
                 f"{a['synops']:,.0f} SynOps, {a['spikes']:,.0f} spikes, sparsity {a['sparsity']:.3f}, "
                 f"energy ~{a['energy_uj_estimate']:.2f} uJ (estimate, Loihi 1 per-op figures)")
    lines += silence_lines(v)
    lines.append(f"verdict: {v.verdict} (exit status {v.exit_code})")
    lines.append(f"run folder: {out} ({listing(out)})")
    lines.append(f"re-check it anywhere from the folder alone: python -m pipeline recheck {out}")
    return "\n".join(lines)


def verify_summary(report, out: Path) -> str:
    """``verify``'s summary (a :class:`pipeline.report.report.VerifyReport`)."""
    v = report.verification
    kinds = ", ".join(sorted({p["kind"] for p in report.projections}))
    lines = [f"{report.graph}: {v.verdict} ({report.input}); projections: {kinds}"]
    if report.target == "reference":
        lines.append("  Lava not run (--target reference): the float graph against the integer reference only")
    lines.append(f"  expected spikes: {v.expected}")
    lines += ["  " + line.strip() for line in verification_lines(v)]
    if report.float:
        d = report.discretisation
        lines.append(f"  float graph ({d['method']}, dt {d['dt']:g} s) against the integer reference, per layer:")
    else:
        lines.append("  read exactly from the graph's integer metadata (no float graph to compare)")
    for r in report.float:
        lines.append(f"    {r['layer']} ({r['type']}): spikes float {r['float_spikes']} / integer "
                     f"{r['integer_spikes']}, cosine {r['activity_cosine']:.4f}, first divergence "
                     f"{r['first_divergence']}")
    lines += [f"  note: {n}" for n in report.notes]
    lines += task_lines(report.task)
    lines += [f"  {w}" for w in report.warnings]
    if report.metrics:
        from hardware.judge.metrics import lines as metric_lines
        lines += [f"  {line}" for line in metric_lines(report.metrics)]
    if report.loihi2.get("verdict"):
        lines.append(f"  Loihi 2: {report.loihi2['verdict']}")
    lines += [f"  hand-off: {note}" for note in report.handoff]
    lines += silence_lines(v)
    lines.append(f"  report: {out / 'report.html'}; re-check anywhere: python -m pipeline recheck {out}")
    return "\n".join(lines)


def task_lines(task: dict) -> list[str]:
    """verify --data's accuracy table."""
    if not task:
        return []
    width = max(len(r["variant"]) for r in task["rows"])
    out = [f"  task accuracy on {task['data']}; decoding: {task['decoding']}"]
    for r in task["rows"]:
        value = "     -" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        out.append(f"    {r['variant']:<{width}s}  {value}" + (f"  ({r['note']})" if r["note"] else ""))
    out.append(f"    chance: {task['chance']:.4f} (1 in {len(task['classes'])} classes; the samples cover "
               f"{task['classes_present']} of them)")
    skipped = task.get("skipped", [])
    if skipped:
        out.append(f"    skipped (data.on_error=skip): {len(skipped)} recording{'s' * (len(skipped) > 1)}, e.g. "
                   f"{skipped[0]['error']} (all in report.json task.skipped)")
    return out
