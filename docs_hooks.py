"""MkDocs hook (mkdocs.yml names it): the results under benchmarks/results/ become files of the site, so a page
links an example certificate or a results file where it stands instead of pasting a copy."""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "benchmarks" / "results"


def on_files(files, config):
    for path in sorted(RESULTS.iterdir()):
        if path.is_file() and path.suffix in {".json", ".txt", ".png"}:
            files.append(File(str(path.relative_to(ROOT)), str(ROOT), config["site_dir"], False))
    return files
