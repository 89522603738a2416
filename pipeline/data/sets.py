"""The data of a run: training set, validation split and test split.

The validation split is held out of the real training split (``data.val_fraction``, per class, seeded by
``data.seed``): per-epoch curves and every choice of a hyperparameter look at it, never at the test split, which
is used once, at the end. Training uses the rest of the real training split, or a distilled set
(``data.distilled``, made from that same rest by ``pipeline distill``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import DataConfig
from pipeline.data import dataset, distilled
from pipeline.data.layout import DataError
from pipeline.data.registry import DATASETS
from pipeline.data.split import Split, carve_validation


@dataclass(frozen=True)
class RunData:
    train: Split        # what training uses: the real training split less validation, or a distilled set
    val: Split          # held out of the real training split (empty when data.val_fraction = 0)
    test: Split         # the test split, for the final measurement only


def real_train(cfg: DataConfig) -> tuple[Split, Split]:
    """(training part, validation part) of the real training split."""
    return carve_validation(dataset.load_split(cfg, "train"), cfg.val_fraction, cfg.seed)


def load(cfg: DataConfig) -> RunData:
    """The run's training set, validation split and test split (``cfg`` with dataset defaults resolved)."""
    if not cfg.distilled:
        train, test = dataset.load(cfg)
        return RunData(*carve_validation(train, cfg.val_fraction, cfg.seed), test)
    train = distilled.load(Path(cfg.distilled), cfg, DATASETS[cfg.name].classes)     # first: it is checked
    _, val = real_train(cfg)
    test = dataset.load_split(cfg, "test")
    if train.frames.shape[1:] != test.frames.shape[1:]:
        raise DataError(f"{cfg.distilled}: frames of shape {train.frames.shape[1:]}, but this dataset's "
                        f"test frames are {test.frames.shape[1:]}")
    return RunData(train, val, test)
