"""Trained synaptic delays (models/delays.py): the training forward pass is the integer model at every step, the
independent reference and the ONNX step model run the same delays from the exported graph, NIR carries them
(a Delay node per input where NIR can say it, the exact integers in the weights' metadata), and every backend
reproduces a delayed network spike for spike."""
import json

import nir
import numpy as np
import pytest
import torch
from conftest import verified

from export import netx_export, nir_export, onnx_export
from hardware.backends import lava, reference
from hardware.backends import onnx as onnx_backend
from hardware.chip.loihi2 import Limits
from hardware.errors import GraphError
from hardware.graph import read
from hardware.graph.ir import input_spikes
from models import delays
from models.architectures import Architecture, build
from models.neuron import CubaParams
from models.snn import golden_spikes
from pipeline.config import ConfigError, RunConfig, apply_overrides
from pipeline.config_rules import validate

STATE_BITS = Limits().state_bits
KINDS = [(arch, kind) for arch in ("dense", "recurrent") for kind in delays.KINDS]


def _model(arch: str, kind: str, exp: int = 0, max_delay: int = 6, seed: int = 3):
    p = CubaParams(1024, 512, 40 if exp == 0 else 20, state_bits=STATE_BITS)
    model = build(Architecture(arch, (12,), 5, hidden=16, hidden_neuron=p, out_neuron=p, weight_exp=exp, seed=seed,
                               delays=max_delay, delay_kind=kind))
    with torch.no_grad():                       # livelier than the trained start: every layer spikes
        for name, w in model.named_parameters():
            if not name.startswith("delays"):
                w.mul_(3)
    return model


def _frames(seed: int = 1, n: int = 8, bins: int = 20) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, bins, 12)) < 0.3).astype(np.uint8)


@pytest.mark.parametrize("exp", [0, -1])
@pytest.mark.parametrize("arch,kind", KINDS)
def test_the_training_forward_pass_is_the_integer_model_at_every_step(arch, kind, exp):
    model, frames = _model(arch, kind, exp), _frames()
    out = model(torch.from_numpy(frames).float())
    dep = model.deployed()
    gold = golden_spikes(dep, frames)
    assert dep.n_steps(20) == 20 + 2 + 2 * 6 == out.spikes[0].shape[1]
    for trained, g in zip(out.spikes, gold):
        assert np.array_equal(trained.detach().numpy().astype(bool), g)
        assert 0 < g.mean() < 1
    assert len({int(d) for layer in dep.layers for d in np.unique(layer.delay)}) > 3   # delays spread over 0..6


def test_a_delay_postpones_a_spike_by_its_steps():
    """One input spike at bin 0, one synapse of delay d: the hidden neuron's input arrives at step 1 + d."""
    p = CubaParams(4095, 0, 10, state_bits=STATE_BITS)
    model = build(Architecture("dense", (1,), 1, hidden=1, hidden_neuron=p, out_neuron=p, seed=0, delays=5))
    frames = np.zeros((1, 3, 1), np.uint8)
    frames[0, 0, 0] = 1
    with torch.no_grad():
        for w in model.weights:
            w.fill_(100 / 128)
        model.delays[0].pos.fill_(3.2)        # deployed as 3
        model.delays[1].pos.fill_(0.0)
    hidden, out = golden_spikes(model.deployed(), frames)
    assert np.flatnonzero(hidden[0, :, 0]).tolist() == [4]
    assert np.flatnonzero(out[0, :, 0]).tolist() == [5]


def test_delays_learn_where_the_gradient_points():
    """The straight-through Gaussian kernel gives each position a gradient: a step of training moves them."""
    torch.manual_seed(0)
    model, frames = _model("dense", "synapse"), torch.from_numpy(_frames()).float()
    before = [d.pos.detach().clone() for d in model.delays]
    opt = torch.optim.AdamW(delays.param_groups(model), lr=1e-3)
    assert opt.param_groups[1]["weight_decay"] == 0 and opt.param_groups[1]["lr_scale"] == delays.POSITION_LR
    model(frames).spikes[-1].sum(dim=1)[:, 0].sum().backward()
    assert all(d.pos.grad is not None and d.pos.grad.abs().sum() > 0 for d in model.delays)
    for g in opt.param_groups:
        g["lr"] = 1e-3 * g.get("lr_scale", 1.0)
    opt.step()
    delays.clamp(model)
    assert all(not torch.equal(b, d.pos) for b, d in zip(before, model.delays))
    assert all(0 <= float(d.pos.detach().min()) and float(d.pos.detach().max()) <= d.max_delay for d in model.delays)
    delays.anneal(model, 1.0)
    assert all(d.sigma == pytest.approx(delays.SIGMA_END) for d in model.delays)
    delays.anneal(model, 0.0)
    assert all(d.sigma == d.max_delay / 2 for d in model.delays)


@pytest.mark.parametrize("arch,kind", KINDS)
def test_nir_carries_the_delays_and_the_reference_and_onnx_run_them(tmp_path, arch, kind):
    model, frames = _model(arch, kind, exp=-1 if kind == "neuron" else 0), _frames()
    dep = model.deployed()
    path = tmp_path / "model.nir"
    nir_export.write(nir_export.to_nir(dep, 1e-3, 20), path)
    g = nir.read(path)
    lines = sorted(k for k, n in g.nodes.items() if isinstance(n, nir.Delay))
    assert lines == (["delay1", "delay2"] if kind == "neuron" else [])
    net = read.load(path)
    gold = golden_spikes(dep, frames)
    x = input_spikes(net, frames)
    for trace in (reference.simulate(net, x), onnx_backend.simulate(net, x, onnx_export.to_onnx(net))):
        assert all(np.array_equal(trace.spikes[k], gg) for k, gg in zip(net.populations, gold))
    for p, layer in zip([p for p in net.projections if p.source != p.target], dep.layers):
        assert np.array_equal(np.broadcast_to(p.delay, p.synapse.weight.shape),
                              1 + np.broadcast_to(layer.delay, layer.weight.shape))


def test_a_delay_node_that_disagrees_with_the_metadata_is_refused(tmp_path):
    dep = _model("dense", "neuron").deployed()
    g = nir_export.to_nir(dep, 1e-3, 20)
    g.nodes["delay1"].delay = g.nodes["delay1"].delay + 1e-3        # edited on one side only
    with pytest.raises(GraphError, match="'delay1'.*does not match the integer metadata 'delay'"):
        read.load(g)


def test_netx_writes_dense_delays_and_refuses_recurrent_ones(tmp_path):
    import h5py
    net = read.load(nir_export.to_nir(_model("dense", "neuron").deployed(), 1e-3, 20))
    netx_export.write(net, tmp_path / "model.net")
    with h5py.File(tmp_path / "model.net") as f:
        assert f["layer/1/delay"].shape == (12,) and f["layer/2/delay"].shape == (16,)
    net = read.load(nir_export.to_nir(_model("recurrent", "synapse").deployed(), 1e-3, 20))
    with pytest.raises(GraphError, match="delays on a recurrent layer, which lava-dl netx 0.6.0 does not run"):
        netx_export.write(net, tmp_path / "rec.net")


def test_run_all_on_a_recurrent_delayed_network_runs_the_other_backends_and_says_why_not_netx(tmp_path):
    """``run --target all`` deploys what netx cannot hold to every other backend and names the refusal;
    ``--target netx`` still stops on it."""
    import re
    from pipeline.commands import run as run_cmd
    cfg = apply_overrides(RunConfig(), ["data.duration_us=20000", "data.n_bins=20"])
    model = _model("recurrent", "synapse")
    deployed = run_cmd._export(cfg, "all", tmp_path, model)
    assert deployed.backends("all") == ("reference", "lava", "onnx") and not (tmp_path / "model.net").exists()
    assert re.match(r"model.net not written: layer \S+: delays on a recurrent layer", deployed.netx_note)
    assert deployed.backends("lava") == ("reference", "lava")
    (tmp_path / "b").mkdir()
    with pytest.raises(GraphError, match="delays on a recurrent layer"):
        run_cmd._export(cfg, "netx", tmp_path / "b", model)


@pytest.mark.parametrize("overrides,match", [
    (["model.delays=63"], "model.delays = 63 is not allowed: expected 0..62 steps"),
    (["model.delays=4", "model.arch=conv"], "model.delays = 4 is not allowed: expected 0 with model.arch=conv"),
    (["model.delays=4", "model.delay_kind=axon"], "model.delay_kind = 'axon' is not allowed"),
    (["model.delays=4", "train.method=sltt"], "train.method = 'sltt' is not allowed: expected bptt with model.delays"),
])
def test_delay_settings_beyond_the_chip_or_the_trainer_are_refused_in_one_line(overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(apply_overrides(RunConfig(), overrides))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("arch,kind", [("dense", "neuron"), ("recurrent", "synapse")])
def test_every_backend_reproduces_a_delayed_network(tmp_path, arch, kind):
    model, frames = _model(arch, kind), _frames(n=6)
    net = read.load(nir_export.to_nir(model.deployed(), 1e-3, 20))
    onnx_export.write(onnx_export.to_onnx(net), tmp_path / "model.onnx")
    backends = ("lava", "onnx") + (("netx",) if arch == "dense" else ())
    if arch == "dense":
        netx_export.write(net, tmp_path / "model.net")
    x = input_spikes(net, frames)
    assert lava.mode(net, x)[0] == "side by side" and "delay" in lava.mode(net, x)[1]
    v = verified(net, x, backends, folder=tmp_path)
    assert v.verdict == "IDENTICAL"
    assert all(b.compared == b.identical == 6 for b in v.backends)
    assert all(L.expected_spikes > 0 for b in v.backends for L in b.layers)


def test_check_counts_the_delays_resources_and_refuses_delays_beyond_the_chip(tmp_path, capsys):
    from pipeline.cli import main
    from hardware.chip import loihi2
    dep = _model("dense", "synapse", max_delay=40).deployed()
    path = tmp_path / "model.nir"
    nir_export.write(nir_export.to_nir(dep, 1e-3, 20), path)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    longest = max(int(layer.delay.max()) for layer in dep.layers)
    assert f"delays of up to {longest} steps: a 6-bit delay per synapse, {longest + 1} input slots per neuron" in out
    row = loihi2.estimate(read.load(path))["layers"][0]
    assert row["synapse_memory_utilisation"] == round(16 * 12 * 14 / (128 * 1024 * 8), 4)      # 8 + 6 bits each
    g = nir_export.to_nir(dep, 1e-3, 20)
    g.nodes["fc1"].metadata["delay"] = np.full((16, 12), 64)
    nir_export.write(g, path)
    assert main(["check", str(path)]) == 2
    assert "delays of 64..64 steps; a delay is 1..63 steps (Loihi 2's limit" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_verify_runs_a_third_party_delayed_graph_on_lava_and_netx_with_its_task_accuracy(tmp_path):
    """A graph with Delay nodes as a delay-learning framework writes it, verified on SHD-layout recordings: netx
    holds its delays (model.net written), the integer reference, Lava and netx agree spike for spike and give the
    same task accuracy."""
    import datafolders
    from conftest import cli
    from graphs import delayed_audio
    nir.write(tmp_path / "g.nir", delayed_audio(np.random.default_rng(0)))
    root = datafolders.shd_folder(tmp_path / "shd", n_test=12)
    proc = cli("verify", str(tmp_path / "g.nir"), "--data", "shd", "--root", str(root), "--out",
               str(tmp_path / "v"), "--set", f"data.cache={tmp_path / 'cache'}", "--set", "graph.netx=true")
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert (tmp_path / "v" / "model.net").is_file()
    assert {b: (r["compared"], r["identical"]) for b, r in report["backends"].items() if b in ("lava", "netx")} \
        == {"lava": (12, 12), "netx": (12, 12)}
    acc = report["task_accuracy"]
    assert acc["reference"] == acc["lava"] == acc["netx"]
    assert any(p["max_delay"] > 1 for p in report["projections"])


def test_nir_read_and_nirtorch_accept_a_delayed_graph(tmp_path):
    """nirtorch 2.6 builds and runs the graph with its Delay nodes on the right edges: with the neurons and the
    delay lines as identities (nirtorch leaves their semantics to the node map), y[t] = V W x[t]."""
    import nirtorch
    model = _model("dense", "neuron")
    dep = model.deployed()
    path = tmp_path / "model.nir"
    nir_export.write(nir_export.to_nir(dep, 1e-3, 20), path)
    g = nir.read(path)
    assert [e for e in g.edges if "delay" in e[0] or "delay" in e[1]] == \
        [("input", "delay1"), ("delay1", "fc1"), ("lif1", "delay2"), ("delay2", "fc2")]

    def linear(node):
        layer = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
        layer.weight.data = torch.tensor(node.weight, dtype=torch.float32)
        return layer
    module = nirtorch.nir_to_torch(g, {nir.Linear: linear, nir.CubaLIF: lambda n: torch.nn.Identity(),
                                       nir.Delay: lambda n: torch.nn.Identity()})
    x = torch.tensor(np.random.default_rng(0).integers(0, 2, (3, 12)), dtype=torch.float32)
    out, _ = module(x, None)
    W, V = (torch.tensor(layer.weight, dtype=torch.float32) for layer in dep.layers)
    assert torch.equal(out, x @ W.T @ V.T)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_with_delays_on_shd_files_certifies_on_every_backend_and_reports_its_delays(tmp_path, capsys):
    import datafolders
    from pipeline.cli import main
    root = datafolders.shd_folder(tmp_path / "shd")
    out = tmp_path / "run"
    code = main(["run", "--quick", "--target", "all", "--out", str(out), "--set", "data.name=shd", "--set",
                 f"data.root={root}", "--set", f"data.cache={tmp_path / 'cache'}", "--set", "model.arch=dense",
                 "--set", "model.vth_hidden=64", "--set", "model.delays=3", "--set", "model.delay_kind=neuron",
                 "--set", "verify.one_per_sample=4", "--set", "train.epochs=2"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "delays learnt (0..3 steps, one per neuron): fc1 mean" in printed
    report = json.loads((out / "report.json").read_text())
    learnt = report["training"]["delays"]
    assert learnt["max_delay"] == 3 and sum(learnt["layers"][0]["histogram"]) == 700
    assert report["model"]["n_steps"] == 8 + 2 + 2 * 3
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["verdict"] == "IDENTICAL"
    assert {b: cert["backends"][b]["compared"] for b in ("reference", "lava", "onnx", "netx")} == \
        {"reference": 20, "lava": 20, "onnx": 20, "netx": 4}
    assert sorted(k for k, n in nir.read(out / "model.nir").nodes.items() if isinstance(n, nir.Delay)) == \
        ["delay1", "delay2"]
    assert (out / "delays.png").is_file() and "synaptic delays training learnt" in (out / "report.html").read_text()
    assert main(["recheck", str(out)]) == 0


def test_choose_delays_ranks_on_validation_and_pairs_each_network_with_itself_without_delays(benchmark_script):
    choose = benchmark_script("choose_delays")
    rows = [{"family": "snn", "candidate": c, "seed": s, "val_accuracy": a}
            for c, s, a in (("recurrent, no delays", 0, 0.88), ("recurrent, no delays", 1, 0.88),
                            ("dense, per synapse, D 16", 0, 0.95), ("dense, per synapse, D 16", 1, 0.91),
                            ("dense, per neuron, D 16", 0, 0.99))]            # one seed only: not ranked yet
    name, mean = choose.chosen(rows, "snn")
    assert name == "dense, per synapse, D 16" and mean[name] == pytest.approx(0.93)
    assert "dense, per neuron, D 16" not in mean
    assert choose.without_delays(name) == "dense, no delays" and choose.without_delays(name) in choose.SNN
    assert all(choose.without_delays(c) in choose.SNN for c in choose.SNN)
    assert len(choose.CEILING) == len(choose.SNN)                         # the same search budget
    tied = [{"family": "snn", "candidate": c, "seed": s, "val_accuracy": 0.94}
            for c in ("recurrent, per synapse, D 32", "recurrent, per synapse, D 16, 60 epochs") for s in (0, 1)]
    for order in (tied, tied[::-1]):                                     # a tie goes to the shorter delays
        assert choose.chosen(order, "snn")[0] == "recurrent, per synapse, D 16, 60 epochs"
    assert choose.without_delays("recurrent, per synapse, D 16, 60 epochs") == "recurrent, no delays, 60 epochs"
    for kind in ("gru", "lstm"):
        h = choose.hidden_for(kind, 64, 20, 87_040)
        count = sum(p.numel() for p in choose.Ceiling(kind, 64, h, 20).parameters())
        assert abs(count - 87_040) < 0.02 * 87_040
        assert choose.Ceiling(kind, 64, h, 20)(torch.zeros(3, 50, 64)).shape == (3, 20)


def test_a_delayed_graph_needs_room_for_its_last_bin_to_arrive():
    """Network.reach: the steps to the furthest layer along the longest delays; verify --data pads that many."""
    from graphs import DT, delayed_audio, dense_recurrent
    g = delayed_audio(np.random.default_rng(0), channels=30, dt=DT)
    net = read.load(g, dt=DT)
    longest = [int(np.max(g.nodes[k].delay) / DT) for k in ("delay1", "delay2")]
    assert net.reach == sum(longest) + 2
    plain = read.load(dense_recurrent(np.random.default_rng(0)), dt=DT)
    assert plain.reach == max(plain.depth.values())            # recurrence adds no steps
    dep = _model("recurrent", "synapse").deployed()
    assert read.load(nir_export.to_nir(dep, 1e-3, 20)).reach <= dep.pad_steps


def test_choose_delays_saves_and_reloads_a_candidates_model(benchmark_script, tmp_path, monkeypatch):
    """The weights of each run are kept (the SNN's surrogate cannot be pickled whole) and load back into the
    candidate's model as built, delays included."""
    from types import SimpleNamespace
    choose = benchmark_script("choose_delays")
    monkeypatch.setattr(choose, "MODELS", tmp_path)
    rng = np.random.default_rng(0)
    split = SimpleNamespace(frames=(rng.random((4, 10, 64)) < 0.2).astype(np.uint8), labels=np.arange(4),
                            classes=tuple(range(20)))
    data = SimpleNamespace(train=split, val=split, test=split)
    for family, name in (("snn", "recurrent, per neuron, D 16"), ("ceiling", next(iter(choose.CEILING)))):
        model = choose.untrained(family, name, 0, data, 87_040)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        torch.save(model.state_dict(), choose._model_path(family, name, 0))
        back = choose.load(family, name, 0, data, 87_040)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
        assert choose.accuracy(family, back, split) == choose.accuracy(family, model, split)
