"""The validation split: held out of the training split per class, seeded, disjoint from what trains."""
import numpy as np

from pipeline.data.split import Split, carve_validation


def _split(labels) -> Split:
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    return Split(np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1, 1), labels, tuple(f"s{i}" for i in range(n)),
                 np.ones(n, np.int64), np.ones(n, np.int64), (), ("a", "b", "c"))


def test_validation_is_held_out_per_class_and_never_trained_on():
    s = _split([0] * 50 + [1] * 30 + [2] * 3)
    train, val = carve_validation(s, 0.1, seed=0)
    assert set(train.names).isdisjoint(val.names) and len(train.names) + len(val.names) == 83
    assert np.bincount(val.labels).tolist() == [5, 3, 1]          # 10% of each class, at least one
    assert list(val.names) == sorted(val.names, key=lambda n: int(n[1:]))      # sample order kept
    again, _ = carve_validation(s, 0.1, seed=0)
    other, _ = carve_validation(s, 0.1, seed=1)
    assert again.names == train.names and other.names != train.names


def test_no_validation_split_when_the_fraction_is_zero_or_a_class_has_one_sample():
    train, val = carve_validation(_split([0, 0, 1]), 0.0, seed=0)
    assert len(val.labels) == 0 and len(train.labels) == 3
    train, val = carve_validation(_split([0, 0, 1]), 0.5, seed=0)
    assert np.bincount(val.labels, minlength=2).tolist() == [1, 0]     # a lone sample stays in training
