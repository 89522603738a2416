"""The temporal half: synthesised speech, the cochlea model, SHD-format files, the recurrent network's integer step,
its NIR form, and every backend on it (Lava side by side: no sample's spikes reach another)."""
import json

import datafolders
import h5py
import nir
import numpy as np
import pytest
import torch
from conftest import verified

from export import netx_export, nir_export, onnx_export
from hardware.backends import BACKENDS, Options, lava, reference
from hardware.chip.loihi2 import Limits
from hardware.graph import read
from hardware.graph.ir import input_spikes
from models.neuron import CubaParams
from models.rsnn import RSNN
from models.snn import DeployedNet, IntLayer, golden_spikes
from pipeline.cli import main
from pipeline.data import speech
from pipeline.data.cochlea import Cochlea
from pipeline.data.formats import shd
from pipeline.data.formats.errors import EventFileError
from pipeline.data.split import Split, carve_validation

STATE_BITS = Limits().state_bits   # the chip's u and v width, given to the model


# --- synthesis and the cochlea -------------------------------------------------------------------------------

def test_synthesis_is_deterministic_by_seed():
    plan = lambda seed: speech.plan(("m3", "f2"), 1, np.random.default_rng(seed))          # noqa: E731
    assert plan(0) == plan(0) and plan(0) != plan(1)
    u = next(u for u in plan(0) if np.isfinite(u.snr_db))         # one with background noise
    a, b = (speech.synthesise(u, np.random.default_rng(5)) for _ in range(2))
    assert np.array_equal(a, b) and len(a) > 0.2 * speech.SAMPLE_RATE and np.abs(a).max() > 0.01
    assert not np.array_equal(a, speech.synthesise(u, np.random.default_rng(6)))          # the noise is seeded
    assert not set(speech.TRAIN_SPEAKERS) & set(speech.TEST_SPEAKERS)


@pytest.mark.parametrize("start", [1, 1_700_000_000])
def test_synthesis_does_not_depend_on_when_espeak_started(start):
    """eSpeak NG seeds its own random generator with the time at espeak_Initialize (the jitter of voices such as
    f5): whatever state it started in (here set to another 'start time' before any synthesis), a recording is the
    same bit for bit. Measured before the fix: the f5 voice gave another waveform in every new process."""
    u = speech.plan(speech.TEST_SPEAKERS, 9, np.random.default_rng([0, 1]))[180]
    assert u.speaker == "f5"
    reference = speech.synthesise(u, np.random.default_rng(3))
    speech._engine().lib.espeak_ng_SetRandSeed(start)            # as if the engine had started at another time
    assert np.array_equal(speech.synthesise(u, np.random.default_rng(3)), reference)


@pytest.mark.parametrize("k", [6, 20, 34, 48, 60])
def test_a_pure_tone_drives_the_channel_tuned_to_it(k):
    c = Cochlea()
    t = np.arange(int(0.3 * c.fs)) / c.fs
    ramp = np.minimum(1.0, t / 0.02)                 # a 20 ms onset ramp: an abrupt start is a click, heard broadband
    x = np.concatenate([np.zeros(int(0.1 * c.fs)), 0.2 * ramp * np.sin(2 * np.pi * c.centres()[k] * t)])
    times, units = c(x)
    counts = np.bincount(units, minlength=c.channels)
    assert counts.argmax() == k, counts
    assert times.min() >= 0.1 and np.all(np.diff(times) >= 0)           # silence before the tone is silent
    # a tuning curve: falling off on both sides of k (broad: the compression, power 0.3, flattens the skirts)
    assert np.all(np.diff(counts[max(0, k - 6):k + 1]) > 0) and np.all(np.diff(counts[k:k + 7]) < 0), counts


# --- SHD-format files ------------------------------------------------------------------------------------------

def _recordings(rng, n=5, channels=700):
    sizes = rng.integers(0, 50, n)
    return shd.Recordings([np.sort(rng.random(s)).astype(np.float32) for s in sizes],
                          [rng.integers(0, channels, s).astype(np.uint16) for s in sizes],
                          rng.integers(0, 20, n), rng.integers(0, 12, n), speech.CLASSES, ("a", "b"))


def test_shd_files_round_trip_in_the_releases_layout(tmp_path):
    r = _recordings(np.random.default_rng(0))
    shd.write(tmp_path / "x.h5", r)
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert {"spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys"} <= \
            {k for k in ("spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys") if k in f}
        assert f["spikes/units"].dtype.metadata["vlen"] == np.uint16 and f["labels"].dtype == np.uint16
    back = shd.read(tmp_path / "x.h5", 700)
    assert all(np.array_equal(a, b) for a, b in zip(r.times, back.times))
    assert all(np.array_equal(a, b) for a, b in zip(r.units, back.units))
    assert np.array_equal(back.labels, r.labels) and np.array_equal(back.speakers, r.speakers)
    assert back.keys == speech.CLASSES and back.speaker_names == ("a", "b")
    labels, speakers = shd.labels(tmp_path / "x.h5")
    assert np.array_equal(labels, r.labels) and np.array_equal(speakers, r.speakers)
    ev = back.events(1)
    assert np.array_equal(ev["x"], r.units[1]) and np.all(np.diff(ev["t"]) >= 0)


def test_damaged_or_foreign_shd_files_are_named_in_one_line(tmp_path):
    good = tmp_path / "good.h5"
    shd.write(good, _recordings(np.random.default_rng(1)))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.zeros(3)
    cases = [(lambda: shd.read(cut, 700), cut, "not a readable SHD-format HDF5 file (OSError"),
             (lambda: shd.read(foreign, 700), foreign, "no spikes/times, spikes/units, labels, extra/speaker"),
             (lambda: shd.labels(foreign), foreign, "no labels"),
             (lambda: [shd.read(good, 10).events(i) for i in range(3)], good, "units are channels 0..9 (10 channels)")]
    for call, path, message in cases:
        with pytest.raises(EventFileError) as e:
            call()
        assert str(path) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_shd_dataset_from_a_users_folder_refuses_a_foreign_file(tmp_path, capsys):
    root = tmp_path / "shd"
    root.mkdir()
    for name in ("shd_train.h5", "shd_test.h5"):
        with h5py.File(root / name, "w") as f:
            f["spikes"] = np.zeros(3)
    code = main(["run", "--quick", "--target", "reference", "--out", str(tmp_path / "run"), "--set", "data.name=shd",
                 "--set", f"data.root={root}", "--set", f"data.cache={tmp_path / 'cache'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "shd_train.h5" in err and "not an SHD-format file" in err
    assert not (tmp_path / "run").exists()


def test_validation_holds_out_whole_speakers():
    n = 60
    s = Split(np.zeros((n, 2, 3), np.uint8), np.arange(n) % 20, tuple(map(str, range(n))), np.ones(n), np.ones(n),
              (), speech.CLASSES, np.arange(n) // 20)              # speakers 0, 1, 2: twenty words each
    train, val = carve_validation(s, 0.3, 0)
    assert len(set(val.groups)) == 1 and not set(val.groups) & set(train.groups) and len(val.labels) == 20
    assert len(train.labels) + len(val.labels) == n


# --- the recurrent network -------------------------------------------------------------------------------------

def _hand_net(w_in, r, exp):
    """One input -> two recurrent neurons (u cleared every step, no leak, threshold 10 << 6) -> one readout."""
    p = CubaParams(4095, 0, 10, state_bits=STATE_BITS)
    return DeployedNet((1,), (IntLayer("rec1", np.array(w_in, np.int8), exp, p, recurrent=np.array(r, np.int8)),
                              IntLayer("out", np.ones((1, 2), np.int8), exp, p)))


def test_recurrent_integer_step_by_hand():
    x = torch.tensor([1, 1, 1, 1, 0], dtype=torch.uint8).reshape(1, 5, 1)
    # exponent 0: neuron 0 gets 11 per input spike (u = 704 > 640: a spike) and -11 from its own spike of the step
    # before, so it fires every other step; neuron 1 gets 20 from neuron 0's spike of the step before.
    rec = golden_spikes(_hand_net([[11], [0]], [[-11, 0], [20, 0]], 0), x)[0][0]
    assert np.flatnonzero(rec[:, 0]).tolist() == [1, 3] and np.flatnonzero(rec[:, 1]).tolist() == [2, 4]
    # exponent -1: each projection is shifted on its own (floor), then summed: 23 >> 1 = 11, -23 >> 1 = -12, so
    # at step 2 v = -64, at step 3 v = -64 + 704 = 640, not above 640; the spike comes at step 4.
    rec = golden_spikes(_hand_net([[23], [0]], [[-23, 0], [41, 0]], -1), x)[0][0]
    assert np.flatnonzero(rec[:, 0]).tolist() == [1, 4] and np.flatnonzero(rec[:, 1]).tolist() == [2, 5]


def _rsnn(seed=0, sizes=(16, 24, 5), layers=1):
    gen = torch.Generator().manual_seed(seed)
    p = CubaParams(1024, 512, 60, state_bits=STATE_BITS)
    model = RSNN((sizes[0],), sizes[:1] + (sizes[1],) * layers + sizes[-1:], (p,) * (layers + 1), 0, gen)
    return model.deployed()


def _frames(seed, n=10, T=12, C=16, density=0.25):
    return (np.random.default_rng(seed).random((n, T, C)) < density).astype(np.uint8)


@pytest.mark.parametrize("layers", [1, 2])
def test_nir_round_trip_with_recurrence_is_exact(tmp_path, layers):
    model, frames = _rsnn(layers=layers), _frames(1)
    nir_export.write(nir_export.to_nir(model, 0.02, 12), tmp_path / "m.nir")
    g = nir.read(str(tmp_path / "m.nir"))
    subgraphs = [n for n in g.nodes.values() if isinstance(n, nir.NIRGraph)]
    assert len(subgraphs) == layers
    for sub in subgraphs:            # as the NIR paper writes a recurrent layer: CubaLIF and its recurrent weights
        kinds = {k: type(n).__name__ for k, n in sub.nodes.items()}
        assert sorted(kinds.values()) == ["CubaLIF", "Input", "Linear", "Output"]
        lif, rec = (next(k for k, v in kinds.items() if v == t) for t in ("CubaLIF", "Linear"))
        assert (lif, rec) in sub.edges and (rec, lif) in sub.edges
    net = read.load(g)
    gold = golden_spikes(model, frames, tail=2)
    x = input_spikes(net, frames)
    ref = reference.simulate(net, np.concatenate([x, np.zeros((len(x), 2, x.shape[2]), x.dtype)], axis=1))
    assert all(s.sum() > 0 for s in gold)
    assert all(np.array_equal(s, ref.spikes[k]) for s, k in zip(gold, net.populations))


def test_nirtorch_runs_our_recurrent_graph_as_a_recurrence():
    """nirtorch 2.6 reads the subgraph and keeps the recurrent edge as state: with the neurons as identities,
    h[t] = W x[t] + R h[t-1] and y[t] = V h[t]; small integer weights keep float32 exact."""
    import nirtorch
    rng = np.random.default_rng(0)
    W, R, V = rng.integers(-3, 4, (5, 4)), rng.integers(-2, 3, (5, 5)), rng.integers(-3, 4, (2, 5))
    p = CubaParams(1024, 512, 60, state_bits=STATE_BITS)
    model = DeployedNet((4,), (IntLayer("rec1", W.astype(np.int8), 0, p, recurrent=R.astype(np.int8)),
                               IntLayer("out", V.astype(np.int8), 0, p)))

    def linear(node):
        layer = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
        layer.weight.data = torch.tensor(node.weight, dtype=torch.float32)
        return layer
    module = nirtorch.nir_to_torch(nir_export.to_nir(model, 0.02, 4), {nir.Linear: linear,
                                                                        nir.CubaLIF: lambda n: torch.nn.Identity()})
    xs = torch.tensor(rng.integers(0, 2, (3, 2, 4)), dtype=torch.float32)
    h, state = np.zeros((2, 5)), None
    for x in xs:
        out, state = module(x, state)
        h = x.numpy() @ W.T + h @ R.T
        assert np.array_equal(out.detach().numpy(), h @ V.T)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_backend_reproduces_a_recurrent_network(tmp_path):
    model, frames = _rsnn(seed=2, layers=2), _frames(3, n=8)
    net = read.load(nir_export.to_nir(model, 0.02, frames.shape[1]))
    onnx_export.write(onnx_export.to_onnx(net), tmp_path / "model.onnx")
    netx_export.write(net, tmp_path / "model.net")
    x = input_spikes(net, frames)
    assert lava.mode(net, x)[0] == "side by side" and "recurrence" in lava.mode(net, x)[1]
    v = verified(net, x, ("lava", "onnx", "netx"), folder=tmp_path)
    assert v.verdict == "IDENTICAL"
    assert all(b.compared == b.identical == 8 for b in v.backends)
    assert all(L.expected_spikes > 0 for b in v.backends for L in b.layers)
    gold = golden_spikes(model, frames)
    assert all(np.array_equal(g, v.traces["lava"].spikes[k][:, :g.shape[1]]) for g, k in zip(gold, net.populations))


def _echo_net():
    """One input -> a neuron that excites itself (it fires every step once it has fired) -> readout."""
    p = CubaParams(4095, 0, 10, state_bits=STATE_BITS)
    return DeployedNet((1,), (IntLayer("rec1", np.array([[11]], np.int8), 0, p, recurrent=np.array([[11]], np.int8)),
                              IntLayer("out", np.array([[11]], np.int8), 0, p)))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_side_by_side_samples_never_reach_each_other():
    """A self-exciting neuron fires to the end of every sample that has started it. Side by side, the samples that
    never did stay silent, in any order; back to back with Lava's resets (LIFReset clears u and v, then takes the
    step's input, which carries the recurrent spike of the step before), the echo would reach the next sample,
    which is why recurrent networks never take that path (``lava.batch_blocker``)."""
    model = _echo_net()
    frames = np.zeros((4, 6, 1), np.uint8)
    frames[[0, 2], 0, 0] = 1                        # samples 0 and 2 start the echo; 1 and 3 are silent
    net = read.load(nir_export.to_nir(model, 0.02, 6))
    x = input_spikes(net, frames)
    gold = golden_spikes(model, frames)
    assert gold[0][0].sum() > 3 and gold[0][1].sum() == 0
    assert "recurrence" in lava.batch_blocker(net, x)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        side = lava._run(net, x[order], "side by side")
        assert all(np.array_equal(side.spikes[k], g[order]) for k, g in zip(net.populations, gold))
    back = lava._run(net, x, "back to back")
    assert back.spikes["rnn1.lif"][1].any()        # the echo of sample 0 reached sample 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_netx_one_network_per_sample_runs_the_first_samples_and_names_the_rest(tmp_path):
    from hardware.judge import equivalence
    model, frames = _rsnn(seed=4), _frames(5, n=5)
    net = read.load(nir_export.to_nir(model, 0.02, frames.shape[1]))
    netx_export.write(net, tmp_path / "model.net")
    x = input_spikes(net, frames)
    expected = equivalence.reference_expected(net, x, "golden", "the integer reference")
    v = equivalence.verify(net, x, expected, [BACKENDS["netx"], BACKENDS["lava"]],
                           Options(tmp_path, 2, 250, progress=False, one_per_sample=3))
    netx, lv = v.backends
    assert (netx.compared, netx.identical, lv.compared, lv.identical) == (3, 3, 5, 5)
    assert any(line.startswith("netx: samples 3-4 (2 of 5) not run") for line in v.not_compared)
    assert v.verdict == "IDENTICAL"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_verify_takes_the_side_by_side_path_for_a_third_party_recurrent_graph():
    from graphs import DT, dense_recurrent
    net = read.load(dense_recurrent(np.random.default_rng(0)), dt=DT)
    x = (np.random.default_rng(1).random((6, 15, 12)) < 0.4).astype(np.int64)
    assert lava.mode(net, x)[0] == "side by side"
    v = verified(net, x, ("lava",))
    assert v.verdict == "IDENTICAL" and v.backends[0].identical == 6


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_recurrent_run_on_shd_files_certifies_and_rechecks(tmp_path, capsys):
    root = datafolders.shd_folder(tmp_path / "shd")
    out = tmp_path / "run"
    # trained memory-flat (SLTT with eligibility traces) under SADP selection: certified as every run is
    code = main(["run", "--quick", "--target", "all", "--out", str(out), "--set", "data.name=shd", "--set",
                 f"data.root={root}", "--set", f"data.cache={tmp_path / 'cache'}", "--set", "model.vth_hidden=64",
                 "--set", "verify.one_per_sample=4", "--set", "train.method=sltt", "--set", "train.traces=true",
                 "--set", "select.method=sadp"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "trainer: SLTT with traces, online, memory flat in T" in printed
    assert "eligibility traces of the input and recurrent weights" in printed
    cert = json.loads((out / "certificate.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["arch"] == "recurrent" and report["data"]["frames"] == [8, 700]
    assert report["data"]["validation"]["speakers"] == [s for s in range(4) if s not in
                                                       report["data"]["train"]["speakers"]]
    fan_in = report["loihi2"]["resources"]["layers"][0]["fan_in"]
    assert fan_in == 700 + 32                                    # the recurrent synapses are counted
    assert cert["backends"]["lava"]["compared"] == 20 and cert["backends"]["netx"]["compared"] == 4
    assert cert["verdict"] == "IDENTICAL" and cert["training"]["traces"] is True
    assert any("netx: samples 4-19" in line for line in cert["not_checked"])
    assert code == 0 and main(["recheck", str(out)]) == 0


def test_shd_recordings_are_framed_whole(tmp_path):
    """SHD's recordings run to about 1.4 s: the default frames all of it (56 bins of 25 ms), so a spike at 1.3 s
    is in the frames; before, only the first second was framed."""
    from pipeline.config import RunConfig, apply_overrides
    from pipeline.data import dataset, registry
    root = datafolders.shd_folder(tmp_path / "shd", n_train=20, n_test=20, seconds=1.4)
    cfg = registry.resolve(apply_overrides(RunConfig(), ["data.name=shd", f"data.root={root}",
                                                         f"data.cache={tmp_path / 'cache'}"]))
    assert (cfg.data.n_bins, cfg.data.duration_us) == (56, 1_400_000)
    test = dataset.load_split(cfg.data, "test")
    recordings = shd.read(root / "shd_test.h5", 700)
    late = [i for i in range(len(test.labels)) if np.any(recordings.times[i] > 1.0)]
    assert late and test.frames.shape[1:] == (56, 700)
    assert int(test.frames[late].sum()) == sum(len(recordings.times[i]) for i in late)        # none cut off
