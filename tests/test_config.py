import pytest

from pipeline.config import ConfigError, RunConfig, apply_overrides


def test_overrides_are_typed():
    cfg = apply_overrides(RunConfig(), ["train.epochs=3", "train.lr=0.01", "model.hidden=64"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.hidden) == (3, 0.01, 64)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("item, message", [
    ("train.epoch=3", "unknown config key 'train.epoch'"),
    ("nosection.x=1", "unknown config key 'nosection.x'"),
    ("train.epochs=three", "'train.epochs': expected int, got 'three'"),
    ("model.du=5000", "model.du = 5000 is not allowed"),
    ("data.n_bins=100", "data.n_bins = 100 is not allowed"),
    ("train.epochs", "not of the form"),
])
def test_bad_overrides_are_rejected_by_name(item, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        apply_overrides(RunConfig(), [item])
