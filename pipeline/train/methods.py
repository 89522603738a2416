"""What each trainer computes, in a phrase: the run's stage line, its report and summary name it."""
from __future__ import annotations

from pipeline.config import TrainConfig


def traced(t: TrainConfig) -> bool:
    """Whether the run trains with eligibility traces (train.traces means nothing to BPTT)."""
    return t.traces and t.method != "bptt"


def describe(t: TrainConfig, recurrent: bool) -> str:
    """The trainer and what it approximates, e.g. for ``run``'s summary."""
    if t.method == "bptt":
        return "BPTT: the exact surrogate gradient through time; memory grows with T"
    name = f"SLTT-K (K = {t.k})" if t.method == "sltt-k" else "SLTT"
    online = "online, memory flat in T"
    if not t.traces:
        held = " and recurrent spikes" if recurrent else ""
        return f"{name} as published, {online}; every temporal route of the gradient dropped (state{held} detached)"
    if recurrent:
        return (f"{name} with traces, {online}; eligibility traces of the input and recurrent weights (e-prop); "
                "the gradient through recurrent spikes into earlier steps, resets and routes between layers dropped")
    if t.method == "sltt-k":
        return (f"{name} with traces, {online}; K output steps backpropagated, each with its input's eligibility "
                "traces before it; the other steps' losses dropped")
    return (f"{name} with traces, {online}; exact backpropagation through time within windows of {t.window} output "
            "steps, eligibility traces across them (resets before a window and routes between layers across its "
            "start dropped)")
