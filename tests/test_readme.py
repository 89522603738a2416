"""Every figure the README states comes from a file under benchmarks/results/ that a script wrote.

Two ways a README section ties its figures to files:

- ``<!-- results: benchmarks/results/NAME -->`` followed by a fenced block or a table, closed by
  ``<!-- /results -->``: the block is the file's content, verbatim;
- ``<!-- figures: benchmarks/results/A benchmarks/results/B -->``: every figure in the section's prose (a number
  with a decimal point, a ratio such as 1.35x, a percentage, or a number with a unit of time, memory or energy)
  occurs in one of the files named (or in the section's results blocks).

Code, commands and links are not prose. A figure in a section that names no files fails, as does a block that
differs from its file.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
UNITS = r"(?:s|ms|min|minutes|h|hours|MB|MiB|GB|GiB|kB|KB|uJ|pJ|samples/s)"
FIGURE = re.compile(r"(?<![\w.\-/])(?:\d[\d,]*\.\d+(?:x|%)?|\d[\d,]*(?:x|%)|\d[\d,]*(?:\.\d+)?\s?" + UNITS + r")"
                    r"(?![\w.]\d|[\w/])")
BLOCK = re.compile(r"<!-- results: (\S+) -->\n(.*?)\n<!-- /results -->", re.S)
SOURCES = re.compile(r"<!-- figures: ([^>]*?) -->")


def sections() -> list[tuple[str, str]]:
    text = README.read_text()
    parts = re.split(r"(?m)^(#{2,3} .*)$", text)
    out = [("(top)", parts[0])]
    out += [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]
    return out


def _unwrap(block: str) -> str:
    """The content of a results block: a fenced block's inside, or the table as it stands."""
    m = re.fullmatch(r"```\w*\n(.*)\n```", block.strip(), re.S)
    return (m.group(1) if m else block.strip()).strip()


NAMED_VERSION = re.compile(r"\b(?:Python|AEDAT|NIR|nir|nirtorch|tonic|snnTorch|lava-nc|lava-dl|torch|numpy|"
                           r"onnxruntime|version)\s+\d+(?:\.\d+)+")


def prose(text: str) -> str:
    """The section's text without results blocks, code, links, comments, and versions of named software."""
    text = BLOCK.sub(" ", text)
    text = NAMED_VERSION.sub(" ", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    return text


def _normal(figure: str) -> list[str]:
    """The ways a figure may be written in a results file: as in the README, without separators, without a
    space before the unit."""
    f = figure.replace(" ", "")
    bare = re.sub(r"[a-zA-Z%/]+$", "", f)
    return list(dict.fromkeys([figure, f, f.replace(",", ""), bare, bare.replace(",", "")]))


def test_results_blocks_are_their_files_verbatim():
    blocks = BLOCK.findall(README.read_text())
    assert blocks, "the README quotes no results file"
    for name, block in blocks:
        path = ROOT / name
        assert path.is_file() and path.parts[-3:-1] == ("benchmarks", "results"), name
        assert _unwrap(block) == path.read_text().strip(), f"{name}: the README's block differs from the file"


@pytest.mark.parametrize("title, text", sections(), ids=[t for t, _ in sections()])
def test_every_figure_of_a_section_is_in_its_results_files(title, text):
    figures = sorted(set(FIGURE.findall(prose(text))))
    if not figures:
        return
    names = [n for m in SOURCES.findall(text) for n in m.split()]
    assert names, f"section {title!r} states {figures[:5]} but names no results file (<!-- figures: ... -->)"
    for n in names:
        assert (ROOT / n).is_file() and (ROOT / n).parts[-3:-1] == ("benchmarks", "results"), n
    corpus = "\n".join((ROOT / n).read_text() for n in names) + "\n".join(b for _, b in BLOCK.findall(text))
    missing = [f for f in figures if not any(v in corpus for v in _normal(f))]
    assert not missing, f"section {title!r}: {missing} occur in none of {names}"
