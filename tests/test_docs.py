"""The documentation: the README and the MkDocs site in docs/ build, and every figure they state is tied to the
quantity it names in a file a script wrote.

How a section (the text under a ``#``, ``##`` or ``###`` heading) ties its figures:

- results are included, never copied: a page includes a results file with pymdownx.snippets
  (``--8<-- "benchmarks/results/NAME"``); the README, which is read on its own, may quote one as
  ``<!-- results: benchmarks/results/NAME -->`` + a fenced block + ``<!-- /results -->``, which must be the file
  verbatim;
- the prose's figures are tied in a comment at the section's head::

      <!-- figures: benchmarks/results/A.txt benchmarks/results/B.json
      -0.77 = A.txt: ^sadp r=0\\.5:
      467.6 s = B.json: timings_s/run
      missed = A.txt: ^sadp r=0\\.5:
      -->

  Each tie names a file (a listed file by its name, or any file of the repository by its path: a protocol
  setting is tied to the script line that sets it) and where in it the quantity is: for JSON a path of keys joined by ``/`` to a
  number (or a list of numbers), for any other file a regular expression that matches exactly one line. The
  figure must be that number, or a number on that line, at the figure's own precision (a signed figure with
  its sign; a percentage also as a fraction); a verdict word must be a word of that line.

What counts as a figure of the prose (code, commands, links, comments, included files and versions of named
software are not prose): a number with a decimal point, signed or not; a ratio (``1.35x``) or a percentage; a
number with a unit of time, memory or energy; and, in a section that ties figures, every whole number of two or
more digits (not a year, a sensor's size such as ``34 x 34``, or a width such as ``12-bit``). The verdict words "met" and "missed", and "beyond" or "within" a spread, are tied like figures.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
UNITS = r"(?:s|ms|min|minutes|h|hours|MB|MiB|GB|GiB|kB|KB|uJ|pJ|samples/s)"
_NUM = r"[-+]?\d[\d,]*"
FIGURE = re.compile(r"(?<![\w.\-+/^])(?:" + _NUM + r"(?:\.\d+)?\s?" + UNITS + "|" + _NUM + r"\.\d+(?:x|%)?|"
                    + _NUM + r"(?:x|%))(?![\w.]\d|[\w/])")
WHOLE = re.compile(r"(?<![\w.\-+/^#])(?<!x )(?<!> )(?!(?:19|20)\d\d\b)[-+]?(?:\d{1,3}(?:,\d{3})+|\d{2,})"
                   r"(?![\w.,]\d|[\w/%^]|-\w| x \d)")
VERDICT = re.compile(r"\b(met|missed)\b|\b(beyond|within)\b(?= (?:the |its |their )?(?:seed )?spread| it\b)")
BLOCK = re.compile(r"<!-- results: (\S+) -->\n(.*?)\n<!-- /results -->", re.S)
TIES = re.compile(r"<!-- figures: ([^\n]*?)(?: -->|\n(.*?)-->)", re.S)
SNIPPET = re.compile(r'^\s*--8<-- "([^"]+)"\s*$', re.M)
NAMED_VERSION = re.compile(r"\b(?:Python|AEDAT|NIR|nir|nirtorch|tonic|snnTorch|lava-nc|lava-dl|torch|numpy|"
                           r"onnxruntime|version|arXiv)\s+\d+(?:\.\d+)+")


def sections(page: Path) -> list[tuple[str, str]]:
    """(heading, text) of each section of a page; a ``#`` inside a fenced block is code, not a heading."""
    out, fenced = [("(top)", [])], False
    for line in page.read_text().splitlines():
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,3} ", line):
            out.append((line.strip(), []))
        else:
            out[-1][1].append(line)
    return [(t, "\n".join(s)) for t, s in out if "".join(s).strip()]


def prose(text: str) -> str:
    """The section's text without results blocks, code, links, comments, and versions of named software."""
    text = BLOCK.sub(" ", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = SNIPPET.sub(" ", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = NAMED_VERSION.sub(" ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text


def _value(token: str) -> float:
    return float(re.sub(r"[^\d.+-]", "", token.replace(",", "")))


def _decimals(figure: str) -> int:
    m = re.search(r"\.(\d+)", figure)
    return len(m.group(1)) if m else 0


def agrees(figure: str, number: float) -> bool:
    """``number`` (from a results file) read at the precision ``figure`` states; an unsigned figure (the prose
    says "lost 0.77 points") agrees with either sign, a signed one only with its own."""
    want, d = _value(figure), _decimals(figure)
    signed = figure.lstrip()[:1] in "+-"
    for n in (number, 100 * number) if figure.endswith("%") else (number,):
        got = round(n if signed else abs(n), d)
        if abs(got - (want if signed else abs(want))) < 1e-9:       # equal once rounded as the figure is
            return True
    return False


def resolve(name: str, selector: str, listed: list[str]) -> object:
    """The file a tie names and what its selector picks: a JSON value, or the one line a regex matches."""
    by_name = {Path(n).name: ROOT / n for n in listed}
    path = by_name.get(name, ROOT / name)
    assert path.is_file(), f"tie names {name!r}: no such file (listed: {listed})"
    if path.suffix == ".json":
        value = json.loads(path.read_text())
        for key in selector.split("/"):
            assert isinstance(value, (dict, list)), f"{name}: {selector!r} goes past a value at {key!r}"
            value = value[int(key)] if isinstance(value, list) else value.get(key)
            assert value is not None, f"{name}: no field {selector!r}"
        return value
    lines = [L for L in path.read_text().splitlines() if re.search(selector, L)]
    assert len(lines) == 1, f"{name}: {selector!r} matches {len(lines)} lines, not one"
    return lines[0]


def tie_holds(figure: str, picked: object) -> bool:
    if isinstance(picked, str):                       # a line of a text file
        if re.fullmatch(r"[a-z]+", figure):
            return re.search(rf"\b{figure}\b", picked) is not None
        return any(agrees(figure, _value(t)) for t in re.findall(r"[-+]?\d[\d,]*(?:\.\d+)?", picked))
    if isinstance(picked, bool) or re.fullmatch(r"[a-z]+", figure):
        return picked == figure if isinstance(picked, str) else False
    numbers = picked if isinstance(picked, list) else [picked]
    return any(isinstance(n, (int, float)) and not isinstance(n, bool) and agrees(figure, float(n)) for n in numbers)


def ties(text: str) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    listed, tied = [], {}
    for files, body in TIES.findall(text):
        listed += files.split()
        for line in (body or "").splitlines():
            if line.strip():
                m = re.fullmatch(r"\s*(.+?) = (\S+?): (.+?)\s*", line)
                assert m, f"a tie is 'FIGURE = FILE: SELECTOR', found {line!r}"
                tied.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return listed, tied


def figures(text: str, tying: bool) -> list[str]:
    p = prose(text)
    found = [f.strip() for f in FIGURE.findall(p)]
    if tying:
        found += [w.strip() for w in WHOLE.findall(FIGURE.sub(" ", p))]
        found += [m.group(1) or m.group(2) for m in VERDICT.finditer(p)]
    return sorted(set(found))


CASES = [(page, title, text) for page in PAGES for title, text in sections(page)]


@pytest.mark.parametrize("page, title, text", CASES,
                         ids=[f"{p.relative_to(ROOT)}: {t}" for p, t, _ in CASES])
def test_every_figure_is_tied_to_the_quantity_it_names(page, title, text):
    listed, tied = ties(text)
    found = figures(text, tying=bool(listed))
    where = f"{page.relative_to(ROOT)}, section {title!r}"
    assert not found or listed, f"{where} states {found[:5]} but ties them to no results file (<!-- figures: -->)"
    for n in listed:
        assert (ROOT / n).is_file() and (ROOT / n).parts[-3:-1] == ("benchmarks", "results"), f"{where}: {n}"
    untied = [f for f in found if f not in tied]
    assert not untied, f"{where}: {untied} are tied to nothing"
    stale = [f for f in tied if f not in found]
    assert not stale, f"{where}: ties {stale}, which the prose does not state"
    wrong = [f"{f} = {name}: {sel}" for f, places in tied.items() for name, sel in places
             if not tie_holds(f, resolve(name, sel, listed))]
    assert not wrong, f"{where}: these figures disagree with the quantity they are tied to: {wrong}"


def test_the_readme_quotes_results_files_verbatim():
    for name, block in BLOCK.findall((ROOT / "README.md").read_text()):
        path = ROOT / name
        assert path.is_file() and path.parts[-3:-1] == ("benchmarks", "results"), name
        m = re.fullmatch(r"```\w*\n(.*)\n```", block.strip(), re.S)
        assert (m.group(1) if m else block.strip()).strip() == path.read_text().strip(), f"{name}: differs"
    for page in PAGES[1:]:
        assert "<!-- results:" not in page.read_text(), f"{page}: include results with --8<--, do not copy them"


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the rest belongs in docs/"


@pytest.mark.parametrize("figure, number, ok", [
    ("0.9530", 0.953, True), ("0.95", 0.9530, True), ("0.9530", 0.9540, False), ("-0.77", -0.7712, True),
    ("-0.77", 0.77, False), ("0.77", -0.77, True), ("71.9%", 0.719, True), ("1.99x", 1.99, True),
    ("467.6 s", 467.63, True), ("1,000", 1000, True), ("22", 23, False)])
def test_a_figure_agrees_only_at_its_precision_and_sign(figure, number, ok):
    assert agrees(figure, number) is ok


def test_a_tie_to_the_wrong_row_fails():
    line = "sadp r=0.3: -0.27 pt vs full at 1.42x wall (target: within 0.3 pt at >= 1.35x): accuracy met"
    assert tie_holds("-0.27", line) and tie_holds("1.42x", line) and tie_holds("met", line)
    assert not tie_holds("-0.77", line) and not tie_holds("missed", line) and not tie_holds("0.27x", "x 0.28")


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: no broken link or anchor, no page left out of the navigation, every included
    results file present."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_help_states_the_distillation_protocol_the_benchmark_runs():
    """``distill --help`` quotes the evaluation protocol's learning rate: the one benchmarks/distillation.py uses."""
    from pipeline.help_text import DISTILL_EPILOG
    said = float(re.search(r"train\.lr=(\S+)\s+\(the evaluation protocol", DISTILL_EPILOG).group(1))
    bench = (ROOT / "benchmarks" / "distillation.py").read_text()
    assert said == float(re.search(r'"--lr", type=float, default=([\d.e-]+)', bench).group(1))
