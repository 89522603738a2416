"""report.html: a self-contained page with the verdicts, the divergence heat map and the tables."""
import numpy as np

from hardware import equivalence
from pipeline import html_report


def test_html_report_shows_verdicts_and_divergence(tmp_path):
    g = [np.zeros((3, 5, 4), bool), np.zeros((3, 5, 2), bool)]
    o = [a.copy() for a in g]
    o[1][1, 2, 1] = True
    report = {"accuracy": {"golden": 0.5, "reference": 0.5, "lava": 0.5}, "test_samples": 3,
              "backends": {"reference": equivalence.compare(g, g, ["fc1", "fc2"]),
                           "lava": equivalence.compare(g, o, ["fc1", "fc2"])}}
    assert report["backends"]["lava"]["layers"]["fc2"]["mismatched_per_step"] == [0, 0, 1, 0, 0]
    page = html_report.write(tmp_path, report, title="t").read_text()
    assert page.count("IDENTICAL") == 1 and page.count("DIVERGED") == 1
    assert "sample 1, step 2, layer fc2, neuron 1" in page
    assert 'src="data:image/png;base64,' in page and (tmp_path / "divergence.png").stat().st_size > 0
