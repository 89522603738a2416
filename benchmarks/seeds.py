"""One rule for "beyond the seed spread", shared by the benchmarks that compare methods over seeds."""
from __future__ import annotations

import numpy as np


def paired(mine: list[float], theirs: list[float]) -> tuple[float, list[float], float, bool]:
    """(mean difference in points, per-seed differences, seed spread, beyond it) of two methods' accuracies
    listed seed by seed in the same order.

    The seed spread is the larger standard deviation over seeds of the two methods (the spread the tables print);
    a difference is beyond it when the mean difference is larger and every seed's difference has its sign.
    Judged as printed, at 2 decimals in points, so a figure on a line never reads otherwise than it was judged.
    """
    diffs = [100 * (a - b) for a, b in zip(mine, theirs, strict=True)]
    mean = round(float(np.mean(diffs)), 2)
    spread = round(100 * float(max(np.std(mine), np.std(theirs))), 2)
    beyond = abs(mean) > spread and all(np.sign(d) == np.sign(mean) for d in diffs)
    return mean, diffs, spread, beyond
