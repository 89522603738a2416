"""report.html: a self-contained page with the verdicts, the divergence heat map and the tables, rendered from
the verification."""
import numpy as np

from hardware.judge import equivalence, results
from hardware.judge.trace import Trace
from pipeline.report import html
from pipeline.report.report import VerifyReport


def test_html_report_shows_verdicts_and_divergence(tmp_path):
    names = ["fc1", "fc2"]
    g = Trace({"fc1": np.zeros((3, 5, 4), bool), "fc2": np.zeros((3, 5, 2), bool)})
    o = Trace({k: a.copy() for k, a in g.spikes.items()})
    o.spikes["fc2"][1, 2, 1] = True
    expected = results.Expected(g, "golden", "the golden model")
    rows = (equivalence.compare(names, expected, g, 5, "reference", "ref"),
            equivalence.compare(names, expected, o, 5, "lava", "Lava"))
    assert rows[1].layers[1].mismatched_per_step == (0, 0, 1, 0, 0)
    layers = tuple(results.LayerActivity(k, 2, True, 0, 1, False) for k in names)
    v = results.Verification("golden", "the golden model", 3, 5, 0, ("fc2",), layers, rows, "DIVERGED")
    res = {"resources": {"cores_per_chip": 128}, "layers": []}
    report = VerifyReport(v, "g.nir", "random", "lava", "exact", {"dt": 1e-3}, (), (), (), (), (),
                          {"resources": res, "verdict": "fits"}, 1, 0.1)
    page = html.write(tmp_path, report, title="t").read_text()
    assert page.count(">IDENTICAL<") == 1 and page.count(">DIVERGED<") == 1
    assert "sample 1, layer fc2, neuron 1, step 2" in page
    assert 'src="data:image/png;base64,' in page and (tmp_path / "divergence.png").stat().st_size > 0
