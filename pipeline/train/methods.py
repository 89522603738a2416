"""What each trainer computes, in a phrase: the run's stage line, its report and summary name it."""
from __future__ import annotations

from pipeline.config import TrainConfig


def describe(t: TrainConfig, recurrent: bool) -> str:
    """The trainer and what it approximates, e.g. for ``run``'s summary."""
    if t.method == "bptt":
        return "BPTT: the exact surrogate gradient through time; memory grows with T"
    name = f"SLTT-K (K = {t.k})" if t.method == "sltt-k" else "SLTT"
    online = "online, memory flat in T"
    if not t.traces:
        dropped = "every temporal route of the gradient dropped (state" + (" and recurrent spikes" if recurrent
                                                                             else "") + " detached)"
        return f"{name}, {online}; {dropped}"
    kept = "each layer's own temporal route kept by eligibility traces" + (" (input and recurrent weights)"
                                                                          if recurrent else "")
    return f"{name} with traces, {online}; {kept}; resets and routes between layers dropped"
