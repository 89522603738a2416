"""Choose the temporal network's synaptic delays, and tune its float ceiling with the same budget, on the validation
speakers of the spoken digits; then test the two winners once.

Protocol: ``data.name=spoken_digits`` (64 cochlea channels, 50 bins of 20 ms), the run's defaults otherwise (BPTT,
40 epochs, AdamW 2e-3, channel shift 2: chosen by ``benchmarks/choose_temporal.py``). Validation holds out 2 of the
18 training speakers (3,520 train / 440 validation recordings); the test split is 6 other speakers (1,080).

- ``snn``: each candidate trains on seeds 0 and 1; the deployed integer model's validation accuracy (golden
  model), mean of the seeds, ranks the candidates. The same networks without delays are candidates too: the
  delays' gain is measured against the network they were added to.
- ``ceiling``: non-spiking float GRU and LSTM on the same binary input frames and splits, each at about the SNN's
  parameter count, as many candidates (settings of learning rate, epochs and channel shift) as the ``snn`` family
  has; the model after its last epoch is judged (no epoch picked on validation, as for the SNN).

Two rounds: the first 10 candidates of each family, then 3 more each, taking each first round's winner further
(the SNN: delays up to 32 steps per synapse, 60 epochs with and without delays; the ceiling: 80 epochs, GRU and
LSTM, and the GRU at lr 2e-3); the choice is made over both rounds.

Rows are saved as each run ends (``--out``; a rerun resumes), so the families and candidates can run as separate
processes and sessions (``--family``, ``--candidates``) and be joined with ``--merge``, which picks each family's
winner on validation and tests its two models once: from the models saved beside the part (``~/.cache/nmpipe``,
outside the repository), else retrained (deterministic on CPU).

    .venv/bin/python benchmarks/choose_delays.py --family snn --out /tmp/d/snn
    .venv/bin/python benchmarks/choose_delays.py --family ceiling --out /tmp/d/ceiling
    .venv/bin/python benchmarks/choose_delays.py --merge /tmp/d/snn /tmp/d/ceiling
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.snn import golden_spikes, predict
from pipeline.architecture import build_model
from pipeline.config import RunConfig, apply_overrides
from pipeline.data import registry, sets
from pipeline.train import augment, loop
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

OUT = Path("benchmarks/results/choose_delays")
MODELS = Path.home() / ".cache" / "nmpipe" / "choose_delays"
BASE = ["data.name=spoken_digits", "train.epochs=40"]
SNN = {  # candidate: overrides
    "recurrent, no delays": ["model.arch=recurrent"],
    "recurrent, per synapse, D 16": ["model.arch=recurrent", "model.delays=16", "model.delay_kind=synapse"],
    "recurrent, per neuron, D 16": ["model.arch=recurrent", "model.delays=16", "model.delay_kind=neuron"],
    "recurrent, per neuron, D 8": ["model.arch=recurrent", "model.delays=8", "model.delay_kind=neuron"],
    "recurrent, per neuron, D 32": ["model.arch=recurrent", "model.delays=32", "model.delay_kind=neuron"],
    "recurrent, per neuron, D 62": ["model.arch=recurrent", "model.delays=62", "model.delay_kind=neuron"],
    "dense, no delays": ["model.arch=dense"],
    "dense, per synapse, D 16": ["model.arch=dense", "model.delays=16", "model.delay_kind=synapse"],
    "dense, per neuron, D 16": ["model.arch=dense", "model.delays=16", "model.delay_kind=neuron"],
    "dense, per neuron, D 32": ["model.arch=dense", "model.delays=32", "model.delay_kind=neuron"],
    # the second round (the first's winner further: longer delays, more epochs as the ceiling's winner had)
    "recurrent, per synapse, D 32": ["model.arch=recurrent", "model.delays=32", "model.delay_kind=synapse"],
    "recurrent, per synapse, D 16, 60 epochs": ["model.arch=recurrent", "model.delays=16",
                                                "model.delay_kind=synapse", "train.epochs=60"],
    "recurrent, no delays, 60 epochs": ["model.arch=recurrent", "train.epochs=60"],
}
# (kind, learning rate, epochs, channel shift): the first of each kind is temporal.py's untuned GRU setting
CEILING = {f"{kind}, lr {lr:g}, {epochs} epochs, shift {shift}": (kind, lr, epochs, shift)
           for kind in ("gru", "lstm")
           for lr, epochs, shift in ((3e-3, 40, 2), (1e-3, 40, 2), (3e-3, 40, 0), (3e-3, 60, 2), (1e-3, 60, 2))}
CEILING.update({f"{kind}, lr {lr:g}, {epochs} epochs, shift {shift}": (kind, lr, epochs, shift)   # second round
                for kind, lr, epochs, shift in (("gru", 3e-3, 80, 2), ("lstm", 3e-3, 80, 2), ("gru", 2e-3, 60, 2))})
SEEDS = (0, 1)


def snn_parameters(cfg: RunConfig, data) -> int:
    model = build_model(cfg, data.train.frames.shape[2:], len(data.train.classes))
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("delays"))


class Ceiling(nn.Module):
    """A GRU or LSTM over the binary frames, read out from its last step."""

    def __init__(self, kind: str, inputs: int, hidden: int, classes: int):
        super().__init__()
        self.rnn = (nn.GRU if kind == "gru" else nn.LSTM)(inputs, hidden, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x.float().clamp(max=1))[0][:, -1])


def hidden_for(kind: str, inputs: int, classes: int, budget: int) -> int:
    """The hidden size whose parameter count comes closest to ``budget`` (PyTorch's GRU has 3 gates, the LSTM 4,
    each with input and recurrent weights and two biases)."""
    gates = 3 if kind == "gru" else 4
    count = lambda h: gates * (h * inputs + h * h + 2 * h) + h * classes + classes      # noqa: E731
    return min(range(8, 1024), key=lambda h: abs(count(h) - budget))


def train_ceiling(setting: tuple, data, seed: int, budget: int) -> tuple[Ceiling, dict]:
    kind, lr, epochs, shift = setting
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    inputs, classes = data.train.frames.shape[2], len(data.train.classes)
    model = Ceiling(kind, inputs, hidden_for(kind, inputs, classes, budget), classes)
    opt = torch.optim.Adam(model.parameters(), lr)
    x, y = torch.from_numpy(data.train.frames), torch.from_numpy(data.train.labels)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for b in range(0, len(y), 64):
            i = perm[b:b + 64]
            loss = F.cross_entropy(model(augment.random_shift(x[i], shift, gen)), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, {"parameters": sum(p.numel() for p in model.parameters())}


def accuracy(family: str, model, split) -> float:
    if family == "snn":
        return float((predict(golden_spikes(model.deployed(), split.frames)[-1]) == split.labels).mean())
    with torch.no_grad():
        return float((model(torch.from_numpy(split.frames)).argmax(1).numpy() == split.labels).mean())


def train(family: str, name: str, seed: int, data, budget: int):
    """One candidate's model on one seed, and what its row records besides the accuracy."""
    t0 = time.perf_counter()
    if family == "snn":
        cfg = registry.resolve(apply_overrides(RunConfig(), BASE + SNN[name] + [f"train.seed={seed}"]))
        with contextlib.redirect_stdout(io.StringIO()):
            model = loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes)).model
        extra = {"parameters": snn_parameters(cfg, data)}
    else:
        model, extra = train_ceiling(CEILING[name], data, seed, budget)
    return model, {**extra, "train_s": round(time.perf_counter() - t0, 1)}


def save(model, path: Path) -> None:
    """The model's weights at ``path``, whole or not at all (a killed run leaves no half file to load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path.with_suffix(".part"))
    path.with_suffix(".part").replace(path)


def _model_path(family: str, name: str, seed: int) -> Path:
    return MODELS / f"{family}-{name.replace(', ', '_').replace(' ', '')}-s{seed}.pt"


def run(args, data) -> None:
    rows = harness.load_partial(args.out, [])
    names = args.candidates or list(SNN if args.family == "snn" else CEILING)
    budget = snn_parameters(registry.resolve(apply_overrides(RunConfig(), BASE + SNN["recurrent, no delays"])), data)
    for name in names:
        for seed in args.seeds:
            if any(r["candidate"] == name and r["seed"] == seed for r in rows):
                continue
            model, extra = train(args.family, name, seed, data, budget)
            save(model, _model_path(args.family, name, seed))
            rows.append({"family": args.family, "candidate": name, "seed": seed,
                         "val_accuracy": accuracy(args.family, model, data.val), **extra})
            print(json.dumps(rows[-1]), flush=True)
            harness.save_partial(args.out, rows)


def chosen(rows: list[dict], family: str) -> tuple[str, dict[str, float]]:
    mine = [r for r in rows if r["family"] == family]
    names = list(dict.fromkeys(r["candidate"] for r in mine))
    mean = {n: float(np.mean([r["val_accuracy"] for r in mine if r["candidate"] == n])) for n in names
            if {r["seed"] for r in mine if r["candidate"] == n} >= set(SEEDS)}
    # equal validation accuracy (it happened: 0.9443 twice): the shorter delays win, as the cheaper network to run
    # (fewer steps per inference, less delay memory on the chip)
    return max(mean, key=lambda n: (mean[n], -max_delay(n))), mean


def max_delay(name: str) -> int:
    """The longest delay a candidate's name gives ("..., D 16, ..."), 0 without delays."""
    return next((int(p[2:]) for p in name.split(", ") if p.startswith("D ")), 0)


def without_delays(name: str) -> str:
    """The candidate that is ``name``'s network without delays, trained the same way (its epochs)."""
    parts = name.split(", ")
    return ", ".join([parts[0], "no delays", *(p for p in parts[1:] if p.endswith("epochs"))])


def untrained(family: str, name: str, seed: int, data, budget: int):
    """The candidate's model as built before training (what its saved weights load into)."""
    if family == "snn":
        cfg = registry.resolve(apply_overrides(RunConfig(), BASE + SNN[name] + [f"train.seed={seed}"]))
        return build_model(cfg, data.train.frames.shape[2:], len(data.train.classes))
    kind, inputs, classes = CEILING[name][0], data.train.frames.shape[2], len(data.train.classes)
    return Ceiling(kind, inputs, hidden_for(kind, inputs, classes, budget), classes)


def load(family: str, name: str, seed: int, data, budget: int):
    """A candidate's trained model: its weights saved beside the part, else trained again (deterministic on
    CPU: measured, a GRU trained again scored the same validation accuracy to the last digit) and saved."""
    path = _model_path(family, name, seed)
    if not path.exists():
        model = train(family, name, seed, data, budget)[0]
        save(model, path)
        return model
    model = untrained(family, name, seed, data, budget)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def merge(args, data) -> None:
    rows = list({(r["family"], r["candidate"], r["seed"]): r    # a run repeated in two parts counts once
                 for part in harness.load_parts(args.merge) for r in part}.values())
    budget = snn_parameters(registry.resolve(apply_overrides(RunConfig(), BASE + SNN["recurrent, no delays"])), data)
    result = {"protocol": __doc__.split("\n\n", 1)[1].rsplit("\n\nRows", 1)[0], "rows": rows, "families": {}}
    for family in ("snn", "ceiling"):
        if not any(r["family"] == family for r in rows):
            continue
        name, mean = chosen(rows, family)
        models = [load(family, name, seed, data, budget) for seed in SEEDS]
        tests = [accuracy(family, m, data.test) for m in models]
        fits = [accuracy(family, m, data.train) for m in models]     # how well it fits what it was trained on
        result["families"][family] = {"validation": mean, "chosen": name, "test_accuracy": tests,
                                      "test_mean": float(np.mean(tests)), "train_accuracy": fits,
                                      "train_mean": float(np.mean(fits))}
        if family == "snn":         # the same network without delays, measured on test too: the delays' gain
            plain = without_delays(name)
            tests = [accuracy(family, load(family, plain, seed, data, budget), data.test) for seed in SEEDS]
            result["families"][family].update({"without_delays": plain, "without_delays_test_accuracy": tests,
                                               "without_delays_test_mean": float(np.mean(tests))})
        else:                       # the best of each kind (GRU, LSTM) on test too: every model is reported
            result["families"][family]["best_of_kind"] = {}
            for kind in ("gru", "lstm"):
                best = max((n for n in mean if n.startswith(kind)), key=mean.get, default=None)
                if best is not None:
                    tests = [accuracy(family, load(family, best, seed, data, budget), data.test) for seed in SEEDS]
                    result["families"][family]["best_of_kind"][kind] = {
                        "setting": best, "validation": mean[best], "test_accuracy": tests,
                        "test_mean": float(np.mean(tests))}
    harness.write_json(OUT.with_suffix(".json"), result)
    harness.write_text(OUT.with_suffix(".txt"), table(result))
    print(table(result))


def table(result: dict) -> str:
    lines = []
    for family, f in result["families"].items():
        lines.append(f"{family} (seeds {', '.join(map(str, SEEDS))})".ljust(48) + "validation speakers")
        for name, acc in f["validation"].items():
            lines.append(f"  {name:46s}{acc:.4f}" + ("   <- chosen" if name == f["chosen"] else ""))
        lines.append(f"  chosen, test speakers once: {f['test_mean']:.4f} (seeds "
                     + ", ".join(f"{a:.4f}" for a in f["test_accuracy"]) + ")")
        lines.append(f"  chosen, on its own training recordings: {f['train_mean']:.4f}")
        for kind, b in f.get("best_of_kind", {}).items():
            lines.append(f"  best {kind.upper()}: {b['setting']}, validation {b['validation']:.4f}, test speakers "
                         f"{b['test_mean']:.4f}")
        if "without_delays" in f:
            lines.append(f"  {f['without_delays']}, test speakers: {f['without_delays_test_mean']:.4f} (seeds "
                         + ", ".join(f"{a:.4f}" for a in f["without_delays_test_accuracy"]) + ")")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=("snn", "ceiling"), default="snn")
    ap.add_argument("--candidates", nargs="+", help="run only these candidates of the family")
    harness.common_args(ap, str(OUT), seeds=SEEDS, threads=1)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = sets.load(registry.resolve(apply_overrides(RunConfig(), BASE)).data)
    merge(args, data) if args.merge else run(args, data)


if __name__ == "__main__":
    main()
