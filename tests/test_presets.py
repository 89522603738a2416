"""--source presets: a graph written the way each framework's exporter writes it, read under that preset, gives back
the framework's own update equations (as read in its source; see hardware/graph/discretise.py PRESETS).

The first test resets both sides to zero (Loihi 2's rule); the second runs each framework's own reset (subtraction
for sinabs, Rockpool, Spyx and snnTorch), which verify's float graph models for its accuracy table and warning."""
import math

import nir
import numpy as np
import pytest

from hardware.backends import reference
from hardware.graph import read

W = 0.9          # the one weight, input neuron -> neuron


def one_neuron(node, w: float = W) -> nir.NIRGraph:
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1])}),
                               "w": nir.Affine(weight=np.array([[w]]), bias=np.zeros(1)),
                               "n": node, "output": nir.Output(output_type={"output": np.array([1])})},
                        edges=[("input", "w"), ("w", "n"), ("n", "output")])


def a(v):
    return np.array([float(v)])


def simulate(step, x: np.ndarray, threshold: float, reset: str = "zero", w: float = W) -> list[bool]:
    """A framework's own loop: ``step(state, input) -> (state, v)``; spike when v > threshold, then v = 0 (or
    ``subtract``: v -= threshold; ``subtract-next``: snnTorch's, the threshold taken off v at the next step).
    Input spikes cross the synapse in one step, as on Lava."""
    state, out = None, []
    for t in range(len(x)):
        state, v = step(state, w * x[t - 1] if t >= 1 else 0.0)
        if reset == "subtract-next" and out and out[-1]:
            v -= threshold
            state = state[:-1] + (v,)
        out.append(bool(v > threshold))
        if out[-1] and reset != "subtract-next":
            state = state[:-1] + (0.0 if reset == "zero" else v - threshold,)
    return out


def sinabs_lif(tau):            # sinabs LIF, norm_input=True: v = alpha v + (1 - alpha) x, alpha = exp(-1 / tau)
    alpha = math.exp(-1 / tau)
    return lambda s, x: (((v := alpha * (s[0] if s else 0.0) + (1 - alpha) * x),), v)


def sinabs_iaf(s, x):           # sinabs IAF: v = v + x
    v = (s[0] if s else 0.0) + x
    return (v,), v


def norse_cuba(tau_syn, tau_mem, dt):     # Norse LIFCell: v += dt/tau_mem (-v + i_old); i = (1 - dt/tau_syn) i + x
    def step(s, x):
        i, v = s if s else (0.0, 0.0)
        v = v + dt / tau_mem * (-v + i)
        return (i * (1 - dt / tau_syn) + x, v), v
    return step


def norse_box(tau, dt):                   # Norse LIFBoxCell: v += dt/tau (-v + x)
    return lambda s, x: (((v := (s[0] if s else 0.0) + dt / tau * (-(s[0] if s else 0.0) + x)),), v)


def rockpool_cuba(tau_syn, tau_mem, dt):  # Rockpool LIFTorch: i = beta (i + x); v = alpha v + i
    alpha, beta = math.exp(-dt / tau_mem), math.exp(-dt / tau_syn)

    def step(s, x):
        i, v = s if s else (0.0, 0.0)
        i = beta * (i + x)
        v = alpha * v + i
        return (i, v), v
    return step


def snntorch_leaky(beta):                 # snnTorch Leaky: mem = beta mem + x (reset handled by the loop)
    return lambda s, x: (((v := beta * (s[0] if s else 0.0) + x),), v)


def spyx_lif(beta):                       # Spyx LIF: v = beta v + x
    return lambda s, x: (((v := beta * (s[0] if s else 0.0) + x),), v)


def spyx_cuba(alpha, beta):               # Spyx CuBaLIF: i = alpha i + x; v = beta v + i
    def step(s, x):
        i, v = s if s else (0.0, 0.0)
        i = alpha * i + x
        v = beta * v + i
        return (i, v), v
    return step


def cases():
    dt = 1e-3
    beta, alpha = 0.8, 0.5
    th = 1.0
    return {
        # sinabs.nir._extract_sinabs_module: LIF(tau=tau_mem in steps, v_threshold, v_leak=0, r=1); IF(r=1, v_threshold)
        "sinabs LIF": ("sinabs", None, nir.LIF(tau=a(4.0), r=a(1), v_leak=a(0), v_threshold=a(0.5), v_reset=a(0)),
                       sinabs_lif(4.0), 0.5),
        "sinabs IAF": ("sinabs", None, nir.IF(r=a(1), v_threshold=a(2.5), v_reset=a(0)), sinabs_iaf, 2.5),
        # norse export_nir: CubaLIF(tau = 1 / tau_inv, r = 1, w_in = 1); LIF(tau, r = 1)
        "norse LIFCell": ("norse", None, nir.CubaLIF(tau_syn=a(5e-3), tau_mem=a(1e-2), r=a(1), v_leak=a(0),
                                                     v_threshold=a(0.3), v_reset=a(0), w_in=a(1)),
                          norse_cuba(5e-3, 1e-2, dt), 0.3),
        "norse LIFBox": ("norse", None, nir.LIF(tau=a(1e-2), r=a(1), v_leak=a(0), v_threshold=a(0.3), v_reset=a(0)),
                         norse_box(1e-2, dt), 0.3),
        # rockpool nir._extract_rockpool_module: CubaLIF(tau_syn, tau_mem, r = tau_mem exp(-dt/tau_mem) / dt, w_in=1)
        "rockpool LIFTorch": ("rockpool", None,
                              nir.CubaLIF(tau_syn=a(2e-3), tau_mem=a(1e-2), r=a(1e-2 * math.exp(-0.1) / dt),
                                          v_leak=a(0), v_threshold=a(th), v_reset=a(0), w_in=a(1)),
                              rockpool_cuba(2e-3, 1e-2, dt), th),
        # spyx nir.to_nir(params, ..., dt): LIF(tau = dt / (1 - beta), r = beta, v_threshold = 1)
        "spyx LIF": ("spyx", dt, nir.LIF(tau=a(dt / (1 - beta)), r=a(beta), v_leak=a(0), v_threshold=a(th),
                                         v_reset=a(0)), spyx_lif(beta), th),
        "spyx CuBaLIF": ("spyx", dt, nir.CubaLIF(tau_syn=a(dt / (1 - alpha)), tau_mem=a(dt / (1 - beta)), r=a(beta),
                                                 v_leak=a(0), v_threshold=a(th), v_reset=a(0), w_in=a(1)),
                         spyx_cuba(alpha, beta), th),
    }


@pytest.mark.parametrize("case", list(cases()) + ["snntorch Leaky"])
def test_preset_gives_back_the_frameworks_own_reset_too(case):
    """Past the first spike: each framework's reset rule (PRESETS ``reset``) run by the float graph gives back
    the framework's own loop, spike for spike, over 200 steps with many spikes."""
    from hardware.graph.discretise import PRESETS
    if case == "snntorch Leaky":       # snnTorch 1.0 export_nir: tau = dt / (1 - beta), r = tau / dt, Euler
        dt, beta = 1e-4, 0.8
        source, node, step, threshold = "snntorch", nir.LIF(tau=a(dt / (1 - beta)), r=a(1 / (1 - beta)),
                                                            v_leak=a(0), v_threshold=a(1.0), v_reset=a(0)), \
            snntorch_leaky(beta), 1.0
    else:
        source, dt, node, step, threshold = cases()[case]
    w = W * math.sqrt(2) / 1.4         # irrational: v never lands exactly on a (rational) threshold after a subtraction
    net = read.load(one_neuron(node, w), source=source, dt=dt)
    rule = PRESETS[source]["reset"]
    x = (np.random.default_rng(1).random(200) < 0.6).astype(np.int64)
    got = reference.simulate(net, x.reshape(1, -1, 1), integer=False, reset=rule).spikes["n"][0, :, 0].tolist()
    expected = simulate(step, x.astype(float), threshold, rule, w)
    assert sum(expected) >= 10, "the case must spike often to test the reset"
    assert got == expected, (case, np.flatnonzero(got), np.flatnonzero(expected))
    if rule != "zero":                 # and the rule matters: reset to zero spikes differently
        zero = reference.simulate(net, x.reshape(1, -1, 1), integer=False).spikes["n"][0, :, 0].tolist()
        assert zero != expected


@pytest.mark.parametrize("case", list(cases()))
def test_preset_gives_back_the_frameworks_own_dynamics(case):
    source, dt, node, step, threshold = cases()[case]
    net = read.load(one_neuron(node), source=source, dt=dt)
    x = (np.random.default_rng(0).random(60) < 0.5).astype(np.int64)
    f = reference.simulate(net, x.reshape(1, -1, 1), integer=False)
    expected = simulate(step, x.astype(float), threshold)
    got = f.spikes["n"][0, :, 0].tolist()
    assert sum(expected) >= 3, "the case must spike to test anything"
    assert got == expected, (case, np.flatnonzero(got), np.flatnonzero(expected))
    # and the integer network (what Lava runs) spikes too: the preset reaches the chip, not only the float graph
    assert reference.simulate(net, x.reshape(1, -1, 1)).spikes["n"].sum() > 0


def test_a_wrong_convention_is_caught_where_it_matters():
    """Read without its preset (NIR's exp at 1 ms), Norse's CubaLIF loses the one-step current lag and the unit
    input gain: the spikes differ, so the presets are not interchangeable."""
    source, dt, node, step, threshold = cases()["norse LIFCell"]
    x = (np.random.default_rng(0).random(60) < 0.5).astype(np.int64)
    f = reference.simulate(read.load(one_neuron(node), dt=1e-3), x.reshape(1, -1, 1), integer=False)
    assert f.spikes["n"][0, :, 0].tolist() != simulate(step, x.astype(float), threshold)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sinabs_graph_read_at_a_physical_dt_is_silent_and_the_summary_names_dt(tmp_path):
    from pipeline.commands.verify import verify
    from pipeline.jobs import verify_job
    from pipeline.report.summary import verify_summary
    graph = tmp_path / "sinabs.nir"
    nir.write(graph, nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([4])}),
               "fc": nir.Affine(weight=np.full((3, 4), 1.5), bias=np.zeros(3)),
               "lif": nir.LIF(tau=np.full(3, 8.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                              v_reset=np.zeros(3)),
               "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    report = verify(graph, tmp_path / "wrong", verify_job(dt=1e-3, samples=2, target="reference"), progress=False)
    wrong = report.to_json()
    assert wrong["verdict"] == "SILENT" and [s["layer"] for s in wrong["silent_layers"]] == ["lif"]
    text = verify_summary(report, tmp_path / "wrong")
    assert "WARNING: layer lif never spiked" in text and "dt = 0.001 s" in text and "--source" in text
    right = verify(graph, tmp_path / "right", verify_job(source="sinabs", samples=2, target="reference"), progress=False).to_json()
    assert right["verdict"] == "REFERENCE ONLY" and right["silent_layers"] == []
