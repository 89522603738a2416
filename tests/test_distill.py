"""PACE building blocks: the PEQ-N quantiser and the matching losses."""
import torch

from pipeline.distill.matching import (
    amplitude_phase,
    sdr_features,
    spatial_distance,
    temporal_distance,
)
from pipeline.distill.peq import peq


def test_peq_emits_integers_in_range_with_the_input_as_expectation():
    gen = torch.Generator().manual_seed(0)
    z = torch.tensor([-1.0, 0.0, 0.3, 1.5, 2.75, 3.0, 4.2])
    draws = torch.stack([peq(z, 3, gen) for _ in range(20000)])
    assert torch.equal(draws, draws.round()) and draws.min() >= 0 and draws.max() <= 3
    assert torch.allclose(draws.mean(dim=0), z.clamp(0, 3), atol=0.02)


def test_peq_passes_gradients_straight_through_inside_the_range():
    z = torch.tensor([-0.5, 0.2, 1.7, 3.0, 3.5], requires_grad=True)
    peq(z, 3, torch.Generator().manual_seed(1)).mul(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert z.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]


def test_amplitude_and_phase_parts_add_up_to_the_complex_distance():
    gen = torch.Generator().manual_seed(2)
    a = torch.complex(torch.randn(50, generator=gen), torch.randn(50, generator=gen))
    b = torch.complex(torch.randn(50, generator=gen), torch.randn(50, generator=gen))
    assert torch.allclose(amplitude_phase(a, b), (a - b).abs().mean(), atol=1e-5)


def test_matching_losses_are_zero_for_identical_sets_and_positive_otherwise():
    gen = torch.Generator().manual_seed(3)
    real = torch.rand(32, 8, 20, generator=gen)
    freqs = torch.randn(64, 20, generator=gen)
    flat = real.mean(dim=1)
    assert spatial_distance(flat, flat.clone(), freqs) < 1e-5 and temporal_distance(real, real.clone()) < 1e-5
    other = real + 0.3 * torch.rand(32, 8, 20, generator=gen)
    assert spatial_distance(flat, other.mean(dim=1), freqs) > 1e-2 and temporal_distance(real, other) > 1e-2
    shifted = torch.roll(real, 1, dims=1)       # same frames, shifted in time: only the phase differs
    assert temporal_distance(real, shifted, w_amp=1.0, w_phase=0.0) < 1e-5
    assert temporal_distance(real, shifted, w_amp=0.0, w_phase=1.0) > 1e-2


def test_sdr_adds_the_residual_potential_to_spikes():
    spikes, drive = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.5, -0.4]]])   # v / theta = 1.5 and 0.6
    assert torch.allclose(sdr_features(spikes, drive, k=0.5), torch.tensor([[[1.25, 0.3]]]))


# The distillation loop, the baselines and the distilled folder, on the quick configuration of the built-in digits.

import json  # noqa: E402
from dataclasses import replace  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pipeline.config import QUICK, RunConfig, apply_overrides  # noqa: E402
from pipeline.data.registry import resolve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def quick_cfg(cache: Path, *items: str) -> RunConfig:
    """The quick configuration on the dense model (fast enough for many distillation steps in a test)."""
    return resolve(apply_overrides(RunConfig(), [f"{k}={v}" for k, v in QUICK.items()]
                                   + [f"data.cache={cache}", "model.arch=dense", "model.du=1024", "model.dv=256",
                                      "distill.init=random", *items]))      # the loop's tests: a random start


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from pipeline.data import dataset
    cache = tmp_path_factory.mktemp("cache")
    cfg = quick_cfg(cache)
    return cache, dataset.load_split(cfg.data, "train")


def fixed_loss(cfg, split, frames, labels) -> float:
    """The PACE loss of (binary or continuous) frames under one fixed probe that the optimisation never saw."""
    from pipeline.distill import matching, pace, probes
    model = probes.teacher_model(cfg, split.frames.shape[2:], 10)      # train.seed 0: not a probe seed
    layers = probes.matched_layers(cfg, model.depth)
    by_class = [np.flatnonzero(split.labels == c) for c in range(10)]
    stats = matching.real_stats(model, split.frames, by_class, layers, cfg.distill.sdr_k,
                            matching.Frequencies(512, 1.0, torch.Generator().manual_seed(99)))
    with torch.no_grad():
        syn = pace.features(model, torch.from_numpy(frames), cfg.distill.sdr_k, False, layers)
        return float(sum(pace.matching_loss("pace", real, c, f[labels == c], cfg.distill.temporal)
                         for real, f in zip(stats, syn) for c in range(10)) / (10 * len(layers)))


@pytest.mark.slow
def test_a_tiny_distillation_lowers_its_loss_on_a_probe_it_never_saw(quick):
    """The continuous relaxation: the probabilities match a held-out probe better than the (clipped) real frames
    they start from; the stored set is their rounding."""
    from pipeline.distill import pace
    cache, split = quick
    cfg = quick_cfg(cache, "distill.ipc=2", "distill.iterations=120", "distill.probes=16", "distill.lr=0.2",
                    "distill.peq=false")
    result = pace.optimise(cfg, split.frames, split.labels, 10)
    init = pace.init_indices(split.labels, 10, 2, np.random.default_rng([cfg.distill.seed, 17]))
    start = np.minimum(split.frames[init], 1)
    x = cfg.distill
    assert result.frames.dtype == np.uint8 and set(np.unique(result.frames)) <= {0, 1}
    assert np.array_equal(result.frames, (result.probabilities > 0.5).astype(np.uint8))     # stored: rounded
    assert (result.frames != start).any()
    assert len(result.grad_norms) == 120 and min(result.grad_norms) > 0      # gradients reach the frames
    before = fixed_loss(cfg, split, np.clip(start.astype(np.float32), x.init_eps, 1 - x.init_eps),
                        split.labels[init])
    after = fixed_loss(cfg, split, result.probabilities, result.labels)
    assert after < 0.92 * before, (before, after)          # measured: 1.125 -> 0.968


def test_peq_in_the_loop_shows_the_probes_binary_draws(quick):
    """distill.peq=true: the probes see PEQ-1 draws of the probabilities (binary; straight-through gradient)."""
    from pipeline.distill import pace, probes
    cache, split = quick
    seen = []
    cfg = quick_cfg(cache, "distill.ipc=1", "distill.iterations=3", "distill.peq=true")
    model = probes.teacher_model(cfg, split.frames.shape[2:], 10)
    original = type(model).forward

    def spy(self, x, *args, **kwargs):
        if x.requires_grad:
            seen.append(x.detach().clone())
        return original(self, x, *args, **kwargs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(model), "forward", spy)
        result = pace.optimise(cfg, split.frames, split.labels, 10)
    assert len(seen) == 3 and all(set(torch.unique(s).tolist()) <= {0.0, 1.0} for s in seen)
    assert min(result.grad_norms) > 0


def test_the_real_side_is_computed_once_from_every_sample_of_a_class(quick):
    from pipeline.distill import probes
    from pipeline.distill import matching
    from pipeline.distill.matching import characteristic
    cache, split = quick
    cfg = quick_cfg(cache)
    model = probes.teacher_model(cfg, split.frames.shape[2:], 10)
    by_class = [np.flatnonzero(split.labels == c) for c in range(10)]
    gen = torch.Generator().manual_seed(5)
    stats = matching.real_stats(model, split.frames, by_class, [0], 0.5, matching.Frequencies(16, 1.0, gen),
                            batch=7)   # batched in 7s
    with torch.no_grad():
        f = matching.features(model, torch.from_numpy(split.frames[by_class[3]]), 0.5, False, [0])[0]
    spread = stats[0].spread
    assert torch.allclose(stats[0].mean[3], f.mean(dim=(0, 1)) / spread, atol=1e-5)
    assert torch.allclose(stats[0].cf[3], characteristic(f.mean(dim=1) / spread, stats[0].freqs), atol=1e-5)
    assert stats[0].freqs.shape == (16, model.out_size(0))


def test_matched_layers_follow_the_configuration(quick):
    from pipeline.config import ConfigError
    from pipeline.distill import probes
    cache, _ = quick
    assert probes.matched_layers(quick_cfg(cache), 3) == [0, 1]
    assert probes.matched_layers(quick_cfg(cache, "distill.layers=all"), 3) == [0, 1, 2]
    assert probes.matched_layers(quick_cfg(cache, "distill.layers=2,0"), 3) == [0, 2]
    with pytest.raises(ConfigError, match="layers 0..2"):
        probes.matched_layers(quick_cfg(cache, "distill.layers=5"), 3)


def test_an_interrupted_distillation_resumes_where_it_stopped(quick, tmp_path):
    from pipeline.distill import pace
    cache, split = quick
    cfg = quick_cfg(cache, "distill.ipc=1", "distill.iterations=6", "distill.checkpoint_every=2",
                    "distill.check_every=2")
    cfg = replace_keep(cfg, "best")
    judge = lambda frames, labels: float(-abs(frames.mean() - 0.02))      # noqa: E731  (deterministic)
    whole = pace.optimise(cfg, split.frames, split.labels, 10, judge=judge)

    def interrupt(step, loss):
        if step == 3:
            raise KeyboardInterrupt
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        pace.optimise(cfg, split.frames, split.labels, 10, None, ckpt, judge, on_step=interrupt)
    resumed = pace.optimise(cfg, split.frames, split.labels, 10, None, ckpt, judge)
    assert resumed.resumed_from == 2
    assert np.array_equal(resumed.frames, whole.frames) and resumed.history == whole.history
    assert np.array_equal(resumed.probabilities, whole.probabilities)
    assert resumed.checks == whole.checks and resumed.kept_step == whole.kept_step      # the checks are kept too


def test_keep_best_never_hands_back_a_set_worse_than_its_start(quick):
    """distill.keep=best: the start and every check_every steps are judged; the best is stored, the start on a tie."""
    from pipeline.distill import pace
    cache, split = quick
    cfg = quick_cfg(cache, "distill.ipc=1", "distill.iterations=8", "distill.check_every=4", "distill.lr=1.0")
    idx = pace.init_indices(split.labels, 10, 1, np.random.default_rng([0, 17]))
    start = np.minimum(split.frames[idx], 1)
    seen = []

    def judge(scores):
        def score(frames, labels):
            seen.append(frames.copy())
            assert np.array_equal(labels, split.labels[idx]) and frames.dtype == np.uint8
            return scores[len(seen) - 1]
        return score
    worse = pace.optimise(cfg, split.frames, split.labels, 10, judge=judge([0.5, 0.5, 0.4]))
    assert [c[0] for c in worse.checks] == [0, 4, 8] and worse.kept_step == 0        # a tie keeps the start
    assert np.array_equal(worse.frames, start) and np.array_equal(seen[0], start)
    assert not np.array_equal(seen[2], start)                  # the optimisation did change the set it judged
    seen.clear()
    better = pace.optimise(cfg, split.frames, split.labels, 10, judge=judge([0.5, 0.7, 0.6]))
    assert better.kept_step == 4 and np.array_equal(better.frames, seen[1])
    last = pace.optimise(replace_keep(cfg, "last"), split.frames, split.labels, 10, judge=judge([0.9] * 9))
    assert last.kept_step is None and last.checks == [] and np.array_equal(last.frames, seen[2])


def test_a_herding_start_is_the_herding_coreset_and_leaves_the_probe_draws_alone(quick):
    """distill.init=herding: the set starts from the herding coreset on the first teacher's features (what the
    herding baseline stores), and the probes drawn after the start are those of a random start."""
    from pipeline.distill import coreset, pace, probes
    cache, split = quick
    cfg = quick_cfg(cache, "distill.ipc=2", "distill.iterations=3", "distill.init=herding", "distill.keep=last")
    assert pace.needs_teachers(cfg) and not pace.needs_teachers(quick_cfg(cache, "distill.ipc=2"))
    model = probes.teacher_model(cfg, split.frames.shape[2:], 10)      # a "teacher": any fixed weights will do
    w = [t.detach().clone() for t in probes.weights(model)]
    pool = [probes.Teacher(w, w)]
    herd = coreset.select("herding", split.labels, 10, 2, None, coreset.embed(model, split.frames))
    rng = np.random.default_rng([0, 17])
    assert np.array_equal(pace.start_indices(cfg, split.frames, split.labels, 10, pool, rng), herd)
    rand = pace.init_indices(split.labels, 10, 2, np.random.default_rng([0, 17]))
    assert not np.array_equal(herd, rand)
    after_random = np.random.default_rng([0, 17])
    pace.init_indices(split.labels, 10, 2, after_random)
    assert rng.integers(1 << 30) == after_random.integers(1 << 30)     # the same stream after either start
    start = pace.optimise(replace(cfg, distill=replace(cfg.distill, iterations=0)), split.frames, split.labels, 10,
                          pool)
    assert np.array_equal(start.frames, np.minimum(split.frames[herd], 1)) and np.array_equal(start.start, herd)


def replace_keep(cfg, keep):
    from dataclasses import replace
    return replace(cfg, distill=replace(cfg.distill, keep=keep))


def test_the_check_trains_a_fresh_snn_and_scores_it_on_validation_the_same_way_each_time(quick):
    from pipeline.distill import keep
    cache, split = quick
    cfg = quick_cfg(cache, "distill.check_steps=4")
    judge = keep.judge(cfg, split.frames[:60], split.labels[:60], 10)
    a, b = judge(split.frames[60:80], split.labels[60:80]), judge(split.frames[60:80], split.labels[60:80])
    assert a == b and 0.0 <= a <= 1.0                             # same initialisation and batch order each time
    assert keep.protocol(cfg, 20, 4, 3e-3, 0).train.epochs == 4   # 4 steps at batch 20
    assert keep.protocol(cfg, 120, 4, 3e-3, 0).train.epochs == 2  # 3 batches of 50, 40, 30... per epoch: 2 epochs


def test_pace_distils_sequences_for_the_recurrent_net():
    """1-D temporal streams (T, C) with recurrent probes: the temporal term on their feature sequences."""
    from pipeline.distill import pace, probes
    cfg = resolve(apply_overrides(RunConfig(), ["model.arch=recurrent", "model.hidden=16", "distill.ipc=2",
                                                "distill.iterations=4", "distill.probes=2", "distill.init=random"]))
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 6)
    frames = (rng.random((18, 12, 8)) < 0.1 + 0.2 * (labels[:, None, None] == np.arange(8) % 3)).astype(np.uint8)
    model = probes.teacher_model(cfg, frames.shape[2:], 3)
    assert [w.shape for w in probes.weights(model)] == [(16, 8), (3, 16), (16, 16)]
    r = pace.optimise(cfg, frames, labels, 3)
    assert r.frames.shape == (6, 12, 8) and r.frames.dtype == np.uint8 and len(r.history) == 4
    assert r.history[-1] < r.history[0] and not np.array_equal(r.probabilities, np.clip(
        frames[pace.init_indices(labels, 3, 2, np.random.default_rng([0, 17]))].astype(np.float32), 0.1, 0.9))


def test_expected_binarisation_keeps_each_samples_expected_event_count_at_its_most_probable_places():
    from pipeline.distill.pace import expected_events
    p = torch.tensor([[[0.4, 0.45], [0.4, 0.3]],            # sum 1.55 -> 2 events: the 0.45 and the first 0.4
                      [[0.9, 0.05], [0.2, 0.1]]])           # sum 1.25 -> 1 event, where p > 1/2 puts it too
    out = expected_events(p)
    assert out.tolist() == [[[1.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]
    assert (p > 0.5).float().sum() == 1 and out.sum() == 3    # rounding at 1/2 would have kept one event of three
    rng = torch.Generator().manual_seed(0)
    q = torch.rand(5, 3, 2, 4, 4, generator=rng) * 0.6
    assert torch.equal(expected_events(q).sum(dim=(1, 2, 3, 4)), q.sum(dim=(1, 2, 3, 4)).round())


def test_herding_and_kcenter_choose_as_defined():
    from pipeline.distill.coreset import herding, kcenter
    f = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [10.0, 10.0], [0.9, 1.1]])
    assert herding(f, 1)[0] == 2              # mean (2.78, 2.82): [2, 2] is the closest single sample
    assert list(kcenter(f, 3)) == [2, 3, 0]   # nearest the mean, then farthest from all chosen, twice


def test_distilled_frames_survive_the_event_file_round_trip(tmp_path):
    from pipeline.data.formats import nmnist
    from pipeline.data.frames import to_frames
    from pipeline.distill.store import frames_to_events
    rng = np.random.default_rng(0)
    frames = (rng.random((8, 2, 34, 34)) < 0.05) * rng.integers(1, 255, (8, 2, 34, 34))
    frames = frames.astype(np.uint8)
    nmnist.write_bin(tmp_path / "s.bin", frames_to_events(frames, 310_000))
    events = nmnist.read_bin(tmp_path / "s.bin")
    assert len(events) == int(frames.sum())
    assert np.array_equal(to_frames(events, 8, 310_000, (34, 34)), frames)


@pytest.mark.slow
def test_distill_then_train_on_the_distilled_set(quick, tmp_path):
    cache = quick[0]
    out = tmp_path / "distilled"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "pipeline", *args, "--set", f"data.cache={cache}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
    proc = cli("distill", "--quick", "--ipc", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["samples"] == 20 and meta["storage"]["frames_bytes"] == 20 * 8 * 2 * 34 * 34
    assert len(list((out / "events").rglob("*.bin"))) == 20 and (out / "samples.png").stat().st_size > 0
    assert "storage: frames" in proc.stdout
    run = tmp_path / "run"
    # memory-flat training (SLTT with traces) and SADP selection compose with a distilled set; export and
    # verification are unchanged, and the summary names the trainer and what it approximates
    proc = cli("run", "--quick", "--target", "reference", "--out", str(run), "--set", f"data.distilled={out}",
               "--set", "train.method=sltt", "--set", "train.traces=true", "--set", "select.method=sadp",
               "--set", "train.epochs=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trainer: SLTT with traces, online, memory flat in T; exact backpropagation through time within " \
           "windows of 4 output steps" in proc.stdout
    report = json.loads((run / "report.json").read_text())
    assert report["data"]["train"]["samples"] == 20 and report["data"]["test"]["samples"] == 40
    assert report["training"]["distilled"] == str(out) and report["training"]["trainer"] == "sltt"
    assert report["training"]["traces"] is True
    assert report["training"]["epoch_examples"] == [20, 10, 10]         # one warm-up epoch, then half
    assert report["backends"]["reference"]["identical"] == report["backends"]["reference"]["compared"] == 40
    proc = cli("run", "--target", "reference", "--out", str(tmp_path / "run2"), "--set", f"data.distilled={out}",
               "--set", "data.n_bins=16")              # framed differently from the distilled set: refused
    assert proc.returncode == 2 and "data.n_bins = 8" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_diverged_distillation_stops_with_a_one_line_error(quick, monkeypatch):
    """A non-finite matching loss stops the loop (exit 2 in the CLI) instead of storing a rounded NaN set."""
    from pipeline.distill import pace
    from pipeline.train import loop
    cache, split = quick
    monkeypatch.setattr(pace, "matching_loss", lambda *a, **k: torch.tensor(float("nan")))
    cfg = quick_cfg(cache, "distill.ipc=1", "distill.iterations=3")
    with pytest.raises(loop.TrainingError, match="diverged at step 1/3"):
        pace.optimise(cfg, split.frames, split.labels, 10)


def test_distillation_benchmark_verdicts_name_targets_and_the_seed_spread(benchmark_script):
    distillation = benchmark_script("distillation")
    full = {"accuracy": 0.80, "train_seconds": 1000.0}

    def row(ipc, method, accs, train=10.0, distill=100.0):
        return {"ipc": ipc, "method": method, "accuracy": accs, "train_seconds": train, "distill_seconds": distill}
    rows = [row(1, "pace", [0.57, 0.55]), row(1, "dm", [0.50, 0.52]), row(1, "cf", [0.56, 0.57]),
            row(10, "pace", [0.70, 0.70], train=40.0, distill=60.0), row(10, "random", [0.60, 0.62])]
    lines = distillation.verdicts(rows, full)
    assert lines == [
        "pace IPC 1: 0.5600 = 70.0% of full data's 0.8000 (target >= 70%): met",
        "pace - dm at IPC 1: +5.00 pt (+7.00, +3.00 by seed); spread 1.00 pt: beyond it",
        "pace - cf at IPC 1: -0.50 pt (+1.00, -2.00 by seed); spread 1.00 pt: within it",
        "pace IPC 10: 0.7000 = 87.5% of full data's 0.8000 (target >= 85%): met",
        "pace IPC 10: training 25.0x faster than full data's 1000 s (target >= 20x): met; with its distillation "
        "(60 s) 10.0x",
        "pace - random at IPC 10: +9.00 pt (+10.00, +8.00 by seed); spread 1.00 pt: beyond it"]
    short = distillation.verdicts([row(10, "pace", [0.66, 0.66])], full)[0]
    assert short == ("pace IPC 10: 0.6600 = 82.5% of full data's 0.8000 (target >= 85%): missed by 2.5 points of "
                     "share (needs 0.6800)")


def test_distillation_merge_names_the_rows_of_another_start(benchmark_script, tmp_path):
    """--merge --start herding: optimised rows (and PACE's start) of a random start, or recorded before
    distill.init, keep their figures under METHOD/random-start; real coresets and herding-start rows keep their
    names, and a later part still replaces an earlier row of the same name."""
    import json
    distillation = benchmark_script("distillation")

    def row(method, acc, **kw):
        return {"ipc": 1, "method": method, "accuracy": [acc, acc], "train_seconds": 10.0, "distill_seconds": 1.0,
                "transfer_accuracy": [], "storage_ratio": 10.0, **kw}
    full = {"samples": 100, "epochs": 2, "accuracy": 0.8, "train_seconds": 100.0, "test_samples": 1000}
    old = {"full": full, "rows": [row("random", 0.3), row("herding", 0.5), row("pace-init", 0.33), row("pace", 0.34),
                                  row("dm", 0.40)]}
    new = {"full": full, "rows": [row("pace-init", 0.5, init="herding"), row("pace", 0.52, init="herding"),
                                  row("herding", 0.51)]}
    for name, part in (("old", old), ("new", new)):
        (tmp_path / f"{name}.json").write_text(json.dumps(part))
    distillation.merge([tmp_path / "old.json", tmp_path / "new.json"], tmp_path / "m", start="herding")
    got = {r["method"]: r["accuracy"][0] for r in json.loads((tmp_path / "m.json").read_text())["rows"]}
    assert got == {"random": 0.3, "herding": 0.51, "pace-init": 0.5, "pace": 0.52, "pace-init/random-start": 0.33,
                   "pace/random-start": 0.34, "dm/random-start": 0.40}
    assert "pace - herding at IPC 1: +1.00 pt" in (tmp_path / "m.txt").read_text()
    rows = {r["method"]: r for r in json.loads((tmp_path / "m.json").read_text())["rows"]}
    assert distillation.kept(rows["pace/random-start"]) == "last"           # nothing says it was judged
    distillation.merge([tmp_path / "old.json", tmp_path / "new.json"], tmp_path / "m", start="herding",
                       judged_parts=(tmp_path / "old.json",))
    rows = {r["method"]: r for r in json.loads((tmp_path / "m.json").read_text())["rows"]}
    assert distillation.kept(rows["pace/random-start"]) == "judged" and distillation.kept(rows["random"]) == "-"


def test_the_start_is_chosen_on_the_kept_sets_validation_checks_only(benchmark_script, tmp_path):
    """choose_init: per (dataset, IPC) the best check of PACE's run (what keep=best stores), from a part's log or a
    results JSON; the start with the higher mean over the (dataset, IPC) both have wins; test accuracy is not read."""
    import json
    choose = benchmark_script("choose_init")
    log = tmp_path / "a_checks.txt"
    log.write_text("IPC 1 random: accuracy 0.9 [0.9, 0.9], train 1 s, distill 0 s\n"
                   "distillation check at step 0: validation accuracy 0.5000 (best 0.5000 at step 0)\n"
                   "IPC 1 dm: accuracy 0.9 [0.9, 0.9], train 1 s, distill 1 s\n"
                   "distillation check at step 0: validation accuracy 0.4000 (best 0.4000 at step 0)\n"
                   "distillation check at step 100: validation accuracy 0.4500 (best 0.4500 at step 100)\n"
                   "IPC 1 pace: accuracy 0.99 [0.99, 0.99], train 1 s, distill 1 s\n"
                   "IPC 1 pace-continuous: accuracy 0.9 [0.9, 0.9], train 1 s, distill 1 s\n"
                   "distillation check at step 0: validation accuracy 0.7000 (best 0.7000 at step 0)\n"
                   "IPC 10 pace: accuracy 0.1 [0.1, 0.1], train 1 s, distill 1 s\n")
    part = tmp_path / "h.json"
    part.write_text(json.dumps({"rows": [
        {"ipc": 1, "method": "pace", "checks": [[0, 0.48], [100, 0.47]], "accuracy": [0.1, 0.1]},
        {"ipc": 50, "method": "pace", "checks": [[0, 0.9]], "accuracy": [0.1, 0.1]}]}))
    assert choose.checks(log) == {1: [0.40, 0.45], 10: [0.70]}
    result = choose.choose([("d", "random", log), ("d", "herding", part)])
    assert result["compared"] == [["d", 1]] and result["chosen"] == "herding"        # 0.48 against 0.45
    assert "ahead by 3.00 points" in choose.text(result)
