"""verify --data: task accuracy of a graph on real test recordings, four ways; the reset-by-subtraction warning;
NeuroBench-style metrics checked by hand."""
import json
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import cli

from hardware.errors import GraphError
from hardware.graph import read
from hardware.graph.ir import Dense, Network, Neurons, Projection
from hardware.judge import metrics
from pipeline.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
QUICK_DATA = ("data.n_train=200", "data.n_test=40")


def digits_graph(path: Path, node, seed: int = 0) -> Path:
    """A graph for 2 x 34 x 34 digit frames -> 10 neurons, as a framework writes it (random weights)."""
    w = np.random.default_rng(seed).normal(0, 0.2, (10, 2 * 34 * 34))
    nir.write(path, nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2, 34, 34])}),
               "flat": nir.Flatten(input_type={"input": np.array([2, 34, 34])}, start_dim=0),
               "fc": nir.Affine(weight=w, bias=np.zeros(10)), "lif": node,
               "output": nir.Output(output_type={"output": np.array([10])})},
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")]))
    return path


def sinabs_lif():          # sinabs writes tau in steps, r = 1, v_leak = 0
    return nir.LIF(tau=np.full(10, 4.0), r=np.ones(10), v_leak=np.zeros(10), v_threshold=np.full(10, 0.5),
                   v_reset=np.zeros(10))


def norse_lif():           # Norse: tau in seconds (dt 1e-3), r = 1
    return nir.LIF(tau=np.full(10, 5e-3), r=np.ones(10), v_leak=np.zeros(10), v_threshold=np.full(10, 0.3),
                   v_reset=np.zeros(10))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_verify_of_a_runs_graph_on_its_test_split_gives_the_runs_accuracy(tmp_path, quick_cache):
    """A run's model.nir verified on the same digits: the integer reference and Lava (and netx) report the run's own
    accuracy on the same samples, the table has all four rows, and report.json, the certificate and report.html
    carry it."""
    data = [f"data.cache={quick_cache}", *QUICK_DATA]
    sets = [a for d in data for a in ("--set", d)]
    run = cli("run", "--quick", "--target", "all", "--out", str(tmp_path / "run"), *sets,
              "--set", "model.arch=dense", "--set", "model.hidden=64", "--set", "train.epochs=6")
    assert run.returncode == 0, run.stderr[-2000:]
    ran = json.loads((tmp_path / "run" / "report.json").read_text())
    proc = cli("verify", str(tmp_path / "run" / "model.nir"), "--data", "digits", "--out", str(tmp_path / "v"), *sets)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    acc = report["task_accuracy"]
    assert report["task"]["samples"] == ran["test_samples"] == 40
    # verify counts an undecided readout (no spike, or a tie) as wrong; the run decides it by lowest index and
    # reports the accuracy counting them wrong beside it
    assert acc["reference"] == acc["lava"] == acc["netx"] == ran["undecided"]["accuracy_counting_them_wrong"]
    assert ran["accuracy"]["golden"] == ran["accuracy"]["lava"]
    assert round(ran["accuracy"]["golden"] * 40) == round(acc["reference"] * 40) + \
        ran["undecided"]["correct_by_lowest_index"]
    assert report["task"]["undecided"]["reference"] == ran["undecided"]["samples"]
    assert {"float_framework_reset", "float_reset_zero"} <= set(acc)     # our graph's float parameters, read back
    assert report["decoding"].startswith("spike count argmax")
    assert "task accuracy on digits test split: 40 recordings x 8 bins" in proc.stdout
    for row in ("float graph, nir's reset (zero)", "float graph, Loihi 2's reset (to zero)",
                "integer reference (model.nir)", "lava (must equal the reference)"):
        assert row in proc.stdout
    assert "WARNING" not in proc.stdout                          # NIR's reset is Loihi 2's: nothing to warn about
    matrix = np.array(report["task"]["confusion"]["matrix"])
    assert matrix.sum() == 40 and np.trace(matrix) == round(acc["reference"] * 40)
    assert json.loads((tmp_path / "v" / "certificate.json").read_text())["task_accuracy"] == acc
    page = (tmp_path / "v" / "report.html").read_text()
    assert "Task accuracy" in page and "confusion matrix" in page and "NeuroBench-style metrics" in page
    assert ran["metrics"]["synops_effective_acs"] > 0 and report["metrics"]["parameter_count"] == \
        ran["metrics"]["parameter_count"]
    assert cli("recheck", str(tmp_path / "v")).returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_subtract_reset_graph_gets_the_warning_with_the_measured_accuracy_difference(tmp_path, quick_cache):
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    from pipeline.report.summary import verify_summary
    graph = digits_graph(tmp_path / "sinabs.nir", sinabs_lif())
    sets = (f"data.cache={quick_cache}", *QUICK_DATA)
    report = verify(graph, tmp_path / "v", verify_job(source="sinabs", target="reference", data="digits", bin_us=38750, sets=sets), progress=False)
    acc = report.task["task_accuracy"]
    text = verify_summary(report, tmp_path / "v")
    warning = [line for line in text.splitlines() if "WARNING: sinabs resets by subtraction" in line]
    assert len(warning) == 1, text
    assert f"{acc['float_framework_reset']:.4f} with its own reset and {acc['float_reset_zero']:.4f} with " \
           "Loihi 2's" in warning[0] and "measured on 40 samples" in warning[0]
    assert report.task["reset"] == {"framework": "sinabs", "rule": "subtract"}
    # the two float rows are different simulations: they spike differently on these recordings
    assert report.task["rows"][0]["variant"] == "float graph, sinabs's reset (subtract)"
    # Lava was not run (--target reference): its row says so instead of a number
    lava = [r for r in report.task["rows"] if r["variant"] == "lava"]
    assert lava and lava[0]["accuracy"] is None and lava[0]["note"] == "not run"


@pytest.mark.timeout(300)
def test_a_zero_reset_graph_gets_no_warning_and_without_data_the_warning_counts_spikes(tmp_path, quick_cache):
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    from pipeline.report.summary import verify_summary
    sets = (f"data.cache={quick_cache}", *QUICK_DATA)
    norse = verify(digits_graph(tmp_path / "norse.nir", norse_lif()), tmp_path / "n", verify_job(source="norse", target="reference", data="digits", bin_us=38750, sets=sets), progress=False)
    assert norse.warnings == () and "WARNING" not in verify_summary(norse, tmp_path / "n")
    assert norse.task["reset"] == {"framework": "norse", "rule": "zero"} and norse.task["bins"] == 8
    assert norse.task["task_accuracy"]["float_framework_reset"] == norse.task["task_accuracy"]["float_reset_zero"]
    random_input = verify(digits_graph(tmp_path / "s.nir", sinabs_lif()), tmp_path / "r", verify_job(source="sinabs", target="reference", samples=3, rate=0.3), progress=False)
    assert len(random_input.warnings) == 1
    assert "spikes" in random_input.warnings[0] and "give --data for the accuracy difference" in \
        random_input.warnings[0]


def test_data_framing_errors_are_one_line(tmp_path, quick_cache):
    from pipeline.commands import task
    from pipeline.jobs import verify_job
    sets = (f"data.cache={quick_cache}", *QUICK_DATA)
    sinabs = read.load(digits_graph(tmp_path / "s.nir", sinabs_lif()), source="sinabs")
    with pytest.raises(ConfigError, match=r"counts time steps, not seconds .*give --bin-us"):
        task.load(sinabs, verify_job(sets, data="digits"))
    # the NIR paper's N-MNIST CNN runs at 1 ms bins (about 300 steps): verify's bound is the chip's configured
    # step bound (hardware/chip/loihi2.py), not a run's training default (data.max_bins 64)
    assert task.load(sinabs, verify_job(sets, data="digits", bin_us=1000)).bins == 310
    with pytest.raises(ConfigError, match=r"into 310 bins, more than data.max_bins 64"):
        task.load(sinabs, verify_job(sets + ("data.max_bins=64",), data="digits", bin_us=1000))
    with pytest.raises(ConfigError, match=r"into 3100 bins, more than data.max_bins 1024"):
        task.load(sinabs, verify_job(sets, data="digits", bin_us=100))
    def audio(n):
        return read.load(nir.NIRGraph(
            nodes={"input": nir.Input(input_type={"input": np.array([700])}),
                   "fc": nir.Affine(weight=np.ones((n, 700)), bias=np.zeros(n)),
                   "lif": nir.LIF(tau=np.full(n, 4.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                                  v_reset=np.zeros(n)),
                   "output": nir.Output(output_type={"output": np.array([n])})},
            edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]), source="sinabs")
    with pytest.raises(GraphError, match=r"digits frames to \(2, 34, 34\) per step \(2,312 inputs\); the graph's "
                                         r"input is \(700,\) \(700 inputs\)"):
        task.load(audio(10), verify_job(sets, data="digits", bin_us=38750))
    with pytest.raises(GraphError, match=r"the graph's readout 'lif' has 3 neurons, but digits has 10 classes"):
        task.load(audio(3), verify_job(sets, data="digits", bin_us=38750))
    with pytest.raises(ConfigError, match=r"--data 'foo': not a dataset the pipeline reads"):
        task.load(sinabs, verify_job(data="foo", bin_us=38750))
    with pytest.raises(ConfigError, match="unknown config key 'train.epochs'"):
        task.load(sinabs, verify_job(("train.epochs=3",), data="digits", bin_us=38750))


def test_cli_refuses_data_with_input_in_one_line(tmp_path):
    graph = digits_graph(tmp_path / "s.nir", sinabs_lif())
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 2, 34, 34)))
    proc = cli("verify", str(graph), "--source", "sinabs", "--data", "digits", "--input", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "v"), timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--input and --data" in proc.stderr
    assert not (tmp_path / "v").exists()


def test_neurobench_metrics_by_hand():
    """Two dense layers with known zeros and a hand-counted spike trace."""
    w1 = np.array([[1, 0, 2], [0, 0, 3]])             # 2 x 3: 3 zeros of 6, input fan-out through non-zeros 1, 0, 2
    w2 = np.array([[4, 0], [5, 6], [0, 0]])           # 3 x 2: 3 zeros of 6, fan-out 2, 1
    pop = lambda name, n, spiking=True: Neurons(name, (n,), 100, 200, 50, np.zeros(n, np.int64),   # noqa: E731
                                                np.zeros(n, np.int64), np.zeros(n, np.int64), spiking)
    net = Network((3,), {"a": pop("a", 2), "b": pop("b", 3)},
                  (Projection("input", "a", Dense(w1, 0)), Projection("a", "b", Dense(w2, 0))),
                  ("b",), 1e-3)
    x = np.zeros((2, 4, 3), np.int64)
    x[0, 0] = [1, 1, 1]           # sample 0: effective ops 1 + 0 + 2 = 3
    x[1, 1, 2] = 1                # sample 1: 2
    a = np.zeros((2, 5, 2), bool)
    a[0, 1] = [True, True]        # 2 + 1 = 3 ops into b
    a[1, 3, 0] = True             # 2 ops
    a[1, 4, 1] = True             # past the samples' 4 steps: not counted
    b = np.zeros((2, 5, 3), bool)
    b[0, 2, 1] = True
    m = metrics.measure(net, x, {"a": a, "b": b})
    assert m.synops_effective_acs == (3 + 2 + 3 + 2) / 2
    assert m.synops_dense == 4 * (3 * 2 + 2 * 3)           # every source, every step, every synapse
    assert m.connection_sparsity == 0.5
    assert m.parameter_count == 12 + 3 * 2                 # weights + du, dv, vth per population (no bias)
    assert m.footprint_bytes == 12 + 2 + 2 * (2 + 2 + 3)   # int8 weights, 2 exponents, du/dv 12-bit, vth 17-bit
    assert m.state_bytes == 5 * 6
    # spikes: a 3 (own steps), b 1, over 2 samples x 4 steps x 5 neurons: as computed, then as rendered
    assert m.activation_sparsity == 1 - (4 / 2) / (5 * 4)
    assert [L.activation_sparsity for L in m.layers] == [1 - 1.5 / 8, 1 - 0.5 / 12]
    d = m.to_dict()
    assert d["activation_sparsity"] == round(1 - (4 / 2) / (5 * 4), 4)
    assert [row["activation_sparsity"] for row in d["layers"]] == [round(1 - 1.5 / 8, 4), round(1 - 0.5 / 12, 4)]
