"""report.html: one self-contained page (images embedded) for people, from a run folder's report.json and PNGs."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from pipeline import plots
from pipeline.runfolder import atomic_write


def _img(path: Path, alt: str) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"><figcaption>' \
           f'{html.escape(alt)}</figcaption></figure>'


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write(out: Path, report: dict, title: str = "run report") -> Path:
    """Write ``out/report.html`` (and ``out/divergence.png``) from ``report``; returns the page's path."""
    names = list(next(iter(report["backends"].values()))["layers"]) if report["backends"] else []
    plots.divergence(out / "divergence.png", {b: [r["layers"][n]["mismatched_per_step"] for n in names]
                                              for b, r in report["backends"].items()}, names)
    accuracy = report.get("accuracy", {})
    verdicts = [{"backend": b, "against": r.get("against", "golden"), "compared": r["compared"],
                 "identical": r["identical"],
                 "verdict": "IDENTICAL" if r["identical"] == r["compared"] else "DIVERGED",
                 "first divergence": ", ".join(f"{k} {v}" for k, v in r["first_divergence"].items())
                 if r["first_divergence"] else "none", **({"accuracy": accuracy.get(b, "")} if accuracy else {})}
                for b, r in report["backends"].items()]
    if "golden" in accuracy:
        intro = (f"Golden (integer) accuracy {accuracy['golden']:.4f} on {report['test_samples']} test samples. "
                 "Every backend is compared with the golden model in every layer, step and sample."
                 + (f" Verdict: {report['verdict']}." if "verdict" in report else ""))
    else:
        d = report["discretisation"]
        reading = (f"Discretisation: {d['method']}, dt {d['dt']:g} s ({d['source']} convention); the float graph's "
                   "differences from the reference are quantisation, measured." if "method" in d else
                   "Read exactly from the graph's integer metadata (our contract): no quantisation.")
        intro = (f"Input: {report.get('input', '')}. {reading} Lava must equal the integer reference exactly. "
                 f"Verdict: {report.get('verdict', '')}.")
    warnings = [f"Layer {s['layer']} never spiked in any of the {s['samples']} compared samples: {s['cause']}."
                for s in report.get("silent_layers", [])]
    if report.get("verdict") == "SILENT":
        warnings.append("The output never spiked: identical spikes certify nothing here (exit status 3).")
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>",
             *(f'<p class="warn">WARNING: {html.escape(w)}</p>' for w in warnings),
             "<h2>Spike-level equivalence</h2>", _table(verdicts, list(verdicts[0]) if verdicts else []),
             _img(out / "divergence.png", "mismatched spikes per time step and layer (all zero when identical)"),
             _img(out / "rasters.png", "spike rasters of one sample side by side, mismatches in red")]
    if report.get("float"):
        columns = list(dict.fromkeys(k for r in report["float"] for k in r))
        parts += ["<h2>Float graph vs integer reference, per layer</h2>", _table(report["float"], columns)]
    for note in report.get("notes", []):
        parts.append(f"<p>Note: {html.escape(note)}</p>")
    if report.get("projections"):
        parts += ["<h2>Projections (linear paths composed into one synapse each: a kernel or a matrix)</h2>",
                  _table(report["projections"], list(report["projections"][0]))]
    if "model" in report:
        parts += ["<h2>Integer parameters per layer</h2>",
                  _table(report["model"]["layers"], ["name", "kind", "neurons", "weights", "weight_exp", "du", "dv",
                                                     "vth"])]
    if report.get("quantisation"):
        parts += ["<h2>Quantisation to Loihi 2 integers</h2>",
                  _table(report["quantisation"], list(report["quantisation"][0]))]
    if "loihi2" in report:
        res, act = report["loihi2"]["resources"], report["loihi2"].get("activity")
        parts += [f"<h2>Loihi 2: {res['cores']} of {res['resources']['cores_per_chip']} neuro-cores</h2>",
                  _table(res["layers"], list(res["layers"][0]))]
    if act := report.get("loihi2", {}).get("activity"):
        parts += ["<h2>Activity and energy per inference (energy is an estimate)</h2>",
                  _table([act["per_inference"]], list(act["per_inference"])),
                  _table(act["layers"], list(act["layers"][0])),
                  f"<p>{html.escape(act['energy_source'])}</p>"]
    if "onnx_float" in report:
        f = report["onnx_float"]
        parts += ["<h2>Float ONNX model (no integer truncation)</h2>",
                  f"<p>{f['identical_samples']}/{f['compared']} samples spike-identical; predictions agree on "
                  f"{100 * f['prediction_agreement']:.1f}%; accuracy {f['accuracy']:.4f}. Measured, not an "
                  "equivalence claim.</p>"]
    parts.append(_img(out / "training.png", "training loss"))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
            "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
            ".warn{background:#fff3cd;border-left:4px solid #d39e00;padding:6px 10px}"
            "</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    path = out / "report.html"
    atomic_write(path, lambda p: p.write_text(page))
    return path
