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


def test_every_command_takes_the_same_settings_with_the_same_defaults():
    """verify, check and recheck are configured as run is: frozen dataclasses, --set section.key=value, checked by
    the same rules; the verification section and its defaults are run's."""
    from pipeline.jobs import CheckJob, RecheckJob, VerifyJob, verify_job
    assert VerifyJob().verify == RecheckJob().verify == RunConfig().verify      # workers 2, one_per_sample, ...
    job = verify_job(("verify.workers=3", "verify.one_per_sample=5", "graph.source=sinabs"), samples=2, seed=7)
    assert (job.verify.workers, job.verify.one_per_sample, job.verify.samples) == (3, 5, 2)
    assert (job.graph.source, job.input.seed) == ("sinabs", 7)
    assert verify_job(("verify.workers=3",), workers=4).verify.workers == 4          # the option wins, as in run
    assert apply_overrides(CheckJob(), ["graph.method=euler"]).graph.method == "euler"
    for job, item, message in [(VerifyJob(), "graph.source=snn", "config graph.source = 'snn' is not allowed"),
                               (VerifyJob(), "input.rate=2", "config input.rate = 2.0 is not allowed"),
                               (VerifyJob(), "train.epochs=3", "unknown config key 'train.epochs'"),
                               (RecheckJob(), "verify.workers=0", "verify.samples/workers/chunk"),
                               (CheckJob(), "graph.dt=-1", "config graph.dt = -1.0 is not allowed")]:
        with pytest.raises(ConfigError, match=message):
            apply_overrides(job, [item])


def test_verify_frames_a_dataset_up_to_the_chips_step_bound_not_runs_training_default():
    from hardware.chip.loihi2 import Limits
    from pipeline.jobs import verify_job
    assert verify_job(data="digits").data.max_bins == Limits().max_steps >= 300     # the NIR paper's N-MNIST CNN
    assert RunConfig().data.max_bins == 64
