"""report.html: one self-contained page (images embedded) for people, rendered from a run's or verify's report."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from pipeline.report import plots
from pipeline.report.report import RunReport, Section, VerifyReport
from pipeline.report.summary import silence_lines
from pipeline.runfolder import atomic_write


def _img(path: Path, alt: str) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"><figcaption>' \
           f'{html.escape(alt)}</figcaption></figure>'


def _table(rows) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _section(s: Section) -> str:
    return f"<h2>{html.escape(s.title)}</h2>" + (f"<p>{html.escape(s.text)}</p>" if s.text else "") + _table(s.rows)


def write(out: Path, report: RunReport | VerifyReport, title: str) -> Path:
    """Write ``out/report.html`` (and ``out/divergence.png``) from ``report``; returns the page's path."""
    v = report.verification
    names = [L.layer for L in v.layers]
    plots.divergence(out / "divergence.png", {b.backend: [list(L.mismatched_per_step) for L in b.layers]
                                              for b in v.backends}, names, v.steps)
    rows = [{"backend": b.backend, "against": b.against, "certifies": b.certifies, "compared": b.compared,
             "identical": b.identical, "verdict": b.verdict,
             "steps past the sample's end compared": b.tail_positions > 0,
             "first divergence": str(b.first_divergence) if b.first_divergence else "none",
             **({"accuracy": report.accuracy.get(b.backend, "")} if report.accuracy else {})} for b in v.backends]
    not_compared = [Section("Not compared", (), line) for line in v.not_compared]
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(report.intro)}</p>",
             *(f'<p class="warn">{html.escape(w)}</p>' for w in silence_lines(v) + list(getattr(report, "warnings", ()))),
             "<h2>Spike-level equivalence</h2>", _table(rows), *map(_section, not_compared),
             _img(out / "divergence.png", "mismatched spikes per time step and layer (all zero when identical); "
                                          "steps right of the dashed line lie past the samples' end"),
             _img(out / "rasters.png", "spike rasters of one sample side by side, mismatches in red"),
             *map(_section, report.sections()), _img(out / "confusion.png", "confusion matrix on the test recordings"),
             _img(out / "training.png", "training loss and validation accuracy"),
             _img(out / "delays.png", "the synaptic delays training learnt, per layer")]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
            "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
            ".warn{background:#fff3cd;border-left:4px solid #d39e00;padding:6px 10px}"
            "</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    path = out / "report.html"
    atomic_write(path, lambda p: p.write_text(page))
    return path
