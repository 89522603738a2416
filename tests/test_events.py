"""N-MNIST .bin reading and writing, framing, and the saccade simulator against a real recording."""
import numpy as np
import pytest

from pipeline.data import frames, saccades
from pipeline.data.digits import load_mnist_5k
from pipeline.data.events import make_events
from pipeline.data.formats import nmnist


def test_bin_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ev = make_events(rng.integers(0, 34, 500), rng.integers(0, 34, 500),
                     np.sort(rng.integers(0, 2**23, 500)), rng.integers(0, 2, 500))
    nmnist.write_bin(tmp_path / "a.bin", ev)
    assert (tmp_path / "a.bin").stat().st_size == 5 * 500
    assert np.array_equal(nmnist.read_bin(tmp_path / "a.bin"), ev)


def test_truncated_file_names_file_and_offset(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x01" * 12)
    with pytest.raises(nmnist.EventFileError, match=r"bad\.bin.*truncated after byte 10"):
        nmnist.read_bin(bad)


def test_timestamp_out_of_range_is_refused():
    ev = make_events([0], [0], [2**23], [1])
    with pytest.raises(nmnist.EventFileError, match="timestamps"):
        nmnist.encode_bin(ev)


def test_real_recording_reads(real_nmnist):
    ev = nmnist.read_bin(real_nmnist)
    assert len(ev) == 4325 and ev["x"].max() <= 33 and ev["y"].max() <= 33
    assert 300_000 < ev["t"].max() < 320_000 and 0.45 < ev["p"].mean() < 0.55


def test_frames_count_events_per_bin_and_polarity():
    ev = make_events([1, 1, 2, 3], [0, 0, 5, 6], [0, 10, 50, 100], [1, 1, 0, 1])
    f = frames.to_frames(ev, n_bins=2, duration_us=100, sensor=(34, 34))
    assert f.shape == (2, 2, 34, 34) and f.sum() == 3          # t = 100 is outside the window
    assert f[0, 1, 0, 1] == 2 and f[1, 0, 5, 2] == 1


def test_simulated_recordings_match_real_nmnist_statistics(real_nmnist):
    """Mean over 40 simulated digits vs the real recording: events, duration, ON fraction, active pixels."""
    real = nmnist.read_bin(real_nmnist)
    images, _ = load_mnist_5k()
    rng = np.random.default_rng(0)
    sims = [saccades.simulate(images[i], rng) for i in range(0, 5000, 125)]
    def stats(ev):
        return np.array([len(ev), ev["t"].max(), ev["p"].mean(), len(np.unique(ev["x"] * 34 + ev["y"]))])
    sim, ref = np.mean([stats(e) for e in sims], axis=0), stats(real)
    print("\n           events  duration_us  on_fraction  active_pixels")
    print("real     ", ref.round(3), "\nsimulated", sim.round(3))
    assert abs(sim[0] / ref[0] - 1) < 0.15
    assert abs(sim[1] / ref[1] - 1) < 0.05
    assert abs(sim[2] - ref[2]) < 0.05
    assert abs(sim[3] / ref[3] - 1) < 0.15
    # activity comes in three bursts (one per saccade), as in the real recording
    hist = np.histogram(np.concatenate([e["t"] for e in sims]), bins=31, range=(0, 310_000))[0]
    assert hist[[5, 15, 25]].min() > 1.5 * hist[[10, 21]].max()


def test_simulator_is_deterministic_by_seed():
    images, _ = load_mnist_5k()
    a = saccades.simulate(images[7], np.random.default_rng([3, 7]))
    b = saccades.simulate(images[7], np.random.default_rng([3, 7]))
    c = saccades.simulate(images[7], np.random.default_rng([4, 7]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _reference_simulate(image, rng, p=saccades.SaccadeParams()):
    """The simulator's equations transcribed step by step (as it was first written): scipy interpolation, one
    threshold test and one draw of sub-step times per step."""
    from scipy import ndimage
    H, W = p.sensor
    times, offs = saccades.trajectory(p)
    canvas = np.zeros((H, W))
    canvas[: image.shape[0], : image.shape[1]] = image
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    coords = np.stack([yy[None] - offs[:, 1, None, None], xx[None] - offs[:, 0, None, None]])
    logs = np.log(ndimage.map_coordinates(canvas, coords.reshape(2, -1), order=1, mode="constant")
                  .reshape(len(times), H, W) + p.eps)
    C = np.maximum(p.contrast + p.contrast_sigma * rng.standard_normal((H, W)), 0.05)
    ref = logs[0].copy()
    xs, ys, ts, ps = [], [], [], []
    for k in range(1, len(times)):
        diff = logs[k] - ref
        n = np.floor(np.abs(diff) / C).astype(int)
        y, x = np.nonzero(n)
        if len(y):
            counts, pol = n[y, x], (diff[y, x] > 0).astype(np.int8)
            ref[y, x] += np.where(pol == 1, 1, -1) * counts * C[y, x]
            ys.append(np.repeat(y, counts)); xs.append(np.repeat(x, counts)); ps.append(np.repeat(pol, counts))
            ts.append(times[k - 1] + rng.integers(0, p.step_us, counts.sum()))
    duration = int(times[-1]) + p.step_us
    n_noise = rng.poisson(p.noise_rate_hz * H * W * duration * 1e-6)
    xs.append(rng.integers(0, W, n_noise)); ys.append(rng.integers(0, H, n_noise))
    ts.append(rng.integers(0, duration, n_noise)); ps.append(rng.integers(0, 2, n_noise))
    return make_events(*(np.concatenate(a) for a in (xs, ys, ts, ps)))


def test_fast_simulator_gives_the_events_of_the_equations_bit_for_bit():
    """simulate_many (all images at once, precomputed interpolation, one draw of sub-step times) against the
    step-by-step transcription: the same events for the same seeds, so caches built by either are the same.
    Images: real digits, bright images touching every edge (Fashion-MNIST's are), a blank one."""
    images, _ = load_mnist_5k()
    rng = np.random.default_rng(5)
    edges = rng.random((2, 28, 28))
    batch = [images[0], images[1234], images[4999], edges[0], edges[1] ** 4, np.zeros((28, 28))]
    fast = saccades.simulate_many(batch, [np.random.default_rng([9, i]) for i in range(len(batch))])
    for i, (image, ev) in enumerate(zip(batch, fast)):
        expected = _reference_simulate(image, np.random.default_rng([9, i]))
        assert len(expected) > 100 and np.array_equal(ev, expected), f"image {i}"
    assert np.array_equal(saccades.simulate(images[7], np.random.default_rng(3)),
                          _reference_simulate(images[7], np.random.default_rng(3)))
