"""Training memory and time side by side: BPTT, SLTT and SLTT-K, at several numbers of time steps T; accuracy and
time against SLTT-K's K.

Memory and time (``memory_time`` rows): each (trainer, T) runs in its own subprocess on the default conv model,
batch ``--batch`` (64), frames at T bins. It makes one warm-up step (Adam's state and the gradients exist from
then on), then one profiled step and ``--steps`` timed steps, each the trainer's own ``pipeline.loop.step``
(forward, backward, optimiser) on a batch of real training frames. Reported:

- ``step_peak_bytes``: peak of the bytes of tensors allocated during the step and still live, over the step
  (torch's profiler memory events, every CPU tensor: the float input, activations, the graph, temporaries);
  weights, gradients and Adam's state, allocated before, are ``persistent_bytes``;
- ``graph_peak_bytes``: the peak of the retained autograd graph (``pipeline.train.memory.SavedTensorMeter``);
- ``epoch_seconds``: the mean timed step x the batches of a 4,000-example epoch. The trainers' steps are timed
  in one process, interleaved round robin (``--steps`` rounds after a warm-up round), so a busy machine slows
  them alike and the ratios hold.

Accuracy (``--accuracy``): the default model trained with each trainer (SLTT-K at each ``--ks``) for the
configured epochs, seeds ``--seeds``, deployed integer accuracy on the 1,000 test digits and training time.
``--where`` writes where the time of one step goes (profiler, top operators) for BPTT and SLTT at the largest T.

    .venv/bin/python benchmarks/training.py --threads 2                    # T = 8, 16, 32, 64 (about 10 min)
    .venv/bin/python benchmarks/training.py --T 8 --ks 1 2 4 --accuracy --seeds 0 1
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from settings import DENSE  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from models.snn import golden_spikes, predict  # noqa: E402
from pipeline.architecture import build_model
from pipeline.config import RunConfig, apply_overrides  # noqa: E402
from pipeline.data import dataset, registry, sets  # noqa: E402
from pipeline.select.plans import SCORE_KIND  # noqa: E402
from pipeline.train import loop, memory, sltt  # noqa: E402
import harness  # noqa: E402  (benchmarks/harness.py: atomic results files, parts)

EPOCH_EXAMPLES = 4000


MODELS = {"conv": [], "dense": DENSE, "recurrent": ["data.name=spoken_digits", "train.epochs=40"]}


def trainer(name: str) -> list[str]:
    """'bptt' | 'sltt' | 'sltt-kK', with '+t' for eligibility traces and '+tW' for traces with train.window W ->
    the run's settings."""
    base, _, tail = name.partition("+")
    method, k = ("sltt-k", int(base[6:])) if base.startswith("sltt-k") else (base, 2)
    window = [f"train.window={tail[1:]}"] if tail[1:] else []
    return [f"train.method={method}", f"train.k={k}", f"train.traces={tail.startswith('t')}", *window]


def base_config(args, name: str, extra: list[str]) -> RunConfig:
    return registry.resolve(apply_overrides(RunConfig(), MODELS[args.model] + trainer(name) + args.overrides + extra))


def _steps(cfg: RunConfig, T: int, depth: int, rng) -> set[int] | None:
    return sltt.choose_steps(T, depth, cfg.train.k, rng) if cfg.train.method == "sltt-k" else None


def step_peak_bytes(fn) -> int:
    """Peak bytes of tensors allocated while ``fn`` runs and live at the same time (profiler memory events)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    return int(np.max(np.cumsum([b for _, b in events]), initial=0))


class Setup:
    """One trainer at T bins in this process: model, optimiser and ``run(i)``, a training step on batch i of
    real training frames."""

    def __init__(self, args, name: str, T: int, n_batches: int):
        sized = [f"data.n_train={args.batch * n_batches}"] if args.model != "recurrent" else []   # speakers: whole
        self.cfg = cfg = base_config(args, name, [f"data.n_bins={T}", f"train.batch_size={args.batch}", *sized])
        self.tr = dataset.load_split(cfg.data, "train")
        self.model = build_model(cfg, self.tr.frames.shape[2:], len(self.tr.classes))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.rng, self.B, self.T, self.n = np.random.default_rng(0), args.batch, T, n_batches

    def run(self, i: int) -> None:
        B, i = self.B, i % self.n
        x, y = torch.from_numpy(self.tr.frames[i * B:(i + 1) * B]), torch.from_numpy(self.tr.labels[i * B:(i + 1) * B])
        t = self.cfg.train
        how = loop.How(t.method, _steps(self.cfg, self.T, self.model.depth, self.rng), t.traces,
                       SCORE_KIND.get(self.cfg.select.method) == "spike", t.window)      # as loop.train's epochs
        loop.step(self.model, self.model, self.opt, x, y, torch.full((B,), 1 / B), how)


def one(args, name: str, T: int) -> dict:
    """Memory of ``name`` at T bins, in this process (the allocations of one step after a warm-up step)."""
    s = Setup(args, name, T, 2)
    s.run(0)                                        # warm-up: gradients and Adam state now exist
    persistent = sum(p.numel() * p.element_size() * 4 for p in s.model.parameters())   # w, grad, 2 Adam moments
    peak = step_peak_bytes(lambda: s.run(1))
    with memory.SavedTensorMeter() as meter:
        s.run(1)
    return {"method": name, "T": T, "batch": args.batch, "graph_peak_bytes": meter.peak, "step_peak_bytes": peak,
            "persistent_bytes": persistent}


def timing(args, names: list[str], T: int) -> dict[str, float]:
    """Seconds per training step of each trainer at T, their steps interleaved (round robin, ``--steps`` rounds
    after a warm-up round), so that every trainer sees the same load on the machine."""
    setups = {name: Setup(args, name, T, args.steps + 1) for name in names}
    total = dict.fromkeys(names, 0.0)
    for i in range(args.steps + 1):
        for name, s in setups.items():
            t0 = time.perf_counter()
            s.run(i)
            if i:
                total[name] += time.perf_counter() - t0
    return {name: total[name] / args.steps for name in names}


def where(args, name: str, T: int) -> str:
    """The profiler's top operators (self CPU time) for one step of ``name`` at T."""
    s = Setup(args, name, T, 1)
    s.run(0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        s.run(0)
    return f"## {name}, T = {T}, batch {args.batch}\n" + prof.key_averages().table(sort_by="self_cpu_time_total",
                                                                                   row_limit=14)


def accuracy(args, name: str, seed: int) -> dict:
    """``name`` trained as a run trains (its training split less validation), the float accuracy on the
    validation split after the last epoch (what choices are made on) and the deployed model's on test."""
    cfg = base_config(args, name, [f"train.seed={seed}", "train.eval_every=0"])
    data = sets.load(cfg.data)
    with contextlib.redirect_stdout(io.StringIO()):
        res = loop.train(cfg, data.train.frames, data.train.labels, len(data.train.classes))
    acc = float((predict(golden_spikes(res.model.deployed(), data.test.frames)[-1]) == data.test.labels).mean())
    t = cfg.train
    return {"method": name, "K": t.k if t.method == "sltt-k" else None, "seed": seed, "epochs": t.epochs,
            "T": cfg.data.n_bins, "accuracy": acc, "val_accuracy": loop.accuracy(res.model, data.val.frames, data.val.labels),
            "train_seconds": float(sum(res.epoch_seconds)), "epoch_loss": list(res.epoch_loss),
            "split": "train less validation"}


def table(rows: list[dict], accs: list[dict]) -> str:
    mib = 2 ** 20
    lines = [f"{'T':>4s} {'trainer':9s} {'epoch s':>8s} {'step peak MiB':>13s} {'graph MiB':>10s} "
             f"{'peak vs T0':>10s} {'time vs BPTT':>12s}"]
    T0 = min(r["T"] for r in rows) if rows else 0
    for r in sorted(rows, key=lambda r: (r["T"], r["method"])):
        base = next(x for x in rows if x["method"] == r["method"] and x["T"] == T0)
        bptt = next((x for x in rows if x["method"] == "bptt" and x["T"] == r["T"]), r)
        lines.append(f"{r['T']:4d} {r['method']:9s} {r['epoch_seconds']:8.1f} {r['step_peak_bytes'] / mib:13.1f} "
                     f"{r['graph_peak_bytes'] / mib:10.1f} {r['step_peak_bytes'] / base['step_peak_bytes']:9.2f}x "
                     f"{r['epoch_seconds'] / bptt['epoch_seconds']:11.2f}x")
    if rows:
        lines.append(f"batch {rows[0]['batch']}; epoch = mean timed step x "
                     f"{math.ceil(EPOCH_EXAMPLES / rows[0]['batch'])} batches; persistent (weights, gradients, Adam) {rows[0]['persistent_bytes'] / mib:.1f} MiB, "
                     "not in the step peak")
    names = list(dict.fromkeys(a["method"] for a in accs))
    if names:
        lines.append(f"\n{'trainer':9s} {'accuracy':>16s} {'train s':>8s} {'vs BPTT':>8s}  seeds")
        bptt = [a for a in accs if a["method"] == "bptt"]
        for name in names:
            a = [x for x in accs if x["method"] == name]
            acc = np.array([x["accuracy"] for x in a])
            rel = (f"{100 * (acc.mean() - np.mean([x['accuracy'] for x in bptt])):+7.2f}" if bptt else "      -")
            seconds = np.mean([x["train_seconds"] for x in a])
            lines.append(f"{name:9s} {acc.mean():8.4f} +- {acc.std():.4f} {seconds:8.0f} {rel}  {[x['seed'] for x in a]}")
    return "\n".join(lines)


def plot(rows: list[dict], accs: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == name), key=lambda r: r["T"])
        axes[0].plot([r["T"] for r in rs], [r["step_peak_bytes"] / 2**20 for r in rs], marker="o", label=name)
        axes[1].plot([r["T"] for r in rs], [r["epoch_seconds"] for r in rs], marker="o", label=name)
    axes[0].set(xlabel="time steps T", ylabel="peak memory of a training step, MiB", title="memory")
    axes[1].set(xlabel="time steps T", ylabel=f"seconds per {EPOCH_EXAMPLES}-example epoch", title="time")
    ks = sorted({a["K"] for a in accs if a["K"] is not None})
    if ks:
        ax = axes[2]
        mean = [np.mean([a["accuracy"] for a in accs if a["K"] == k]) * 100 for k in ks]
        ax.plot(ks, mean, marker="o", label="SLTT-K")
        for name, style in (("bptt", "--"), ("sltt", ":")):
            a = [x["accuracy"] for x in accs if x["method"] == name]
            if a:
                ax.axhline(100 * np.mean(a), ls=style, color="k", label=name)
        ax.set(xlabel="K (output steps backpropagated)", ylabel="deployed test accuracy, %", title="SLTT-K")
        twin = ax.twinx()
        twin.plot(ks, [np.mean([a["train_seconds"] for a in accs if a["K"] == k]) for k in ks], color="gray",
                  marker="s", label="train s")
        twin.set_ylabel("training seconds", color="gray")
        ax.legend(fontsize=8)
    for ax in axes[:2]:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="*", default=[8, 16, 32, 64])
    ap.add_argument("--methods", nargs="+", default=["bptt", "sltt", "sltt-k2"],
                    help="bptt, sltt, sltt-kK (SLTT-K with that K)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per (trainer, T)")
    ap.add_argument("--model", choices=tuple(MODELS), default="conv")
    harness.common_args(ap, "benchmarks/results/training")
    ap.add_argument("--accuracy", action="store_true", help="train with each trainer (and SLTT-K at each --ks)")
    ap.add_argument("--ks", type=int, nargs="+", default=[], help="SLTT-K's K for the accuracy curve")
    ap.add_argument("--where", action="store_true", help="profile one step of BPTT and SLTT at the largest T")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--from-pruning", type=Path, nargs="+", default=[],
                    help="pruning benchmark JSONs whose full-data rows (the same default configuration, trained with "
                         "the trainer their --set gives, BPTT by default) join the accuracy rows")
    ap.add_argument("--one", nargs=2, metavar=("TRAINER", "T"), help=argparse.SUPPRESS)
    ap.add_argument("--time", type=int, metavar="T", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(one(args, args.one[0], int(args.one[1]))))
        return
    if args.time:
        print(json.dumps(timing(args, args.methods, args.time)))
        return
    saved = harness.load_partial(args.out, {"memory_time": [], "accuracy": []})
    for part in harness.load_parts(args.merge or []):
        saved = {key: saved[key] + part[key] for key in saved}
    if args.merge:
        args.T, args.methods, args.accuracy = [], [], False       # join only
    rows, accs = saved["memory_time"], saved["accuracy"]
    for path in args.from_pruning:
        run = json.loads(path.read_text())
        given = {tuple(a["overrides"]) for a in run["args"].get("parts", [run["args"]])}   # merged: its parts'
        if len(given) != 1:
            raise SystemExit(f"error: {path}: its parts ran with different --set overrides {sorted(given)}; "
                             f"pass the parts instead")
        settings = dict(o.split("=", 1) for o in given.pop())
        method, k = settings.get("train.method", "bptt"), int(settings.get("train.k", 2))
        name = f"sltt-k{k}" if method == "sltt-k" else method
        accs += [{"method": name, "K": k if method == "sltt-k" else None, "seed": r["seed"],
                  "epochs": len(r["curve"]["seconds"]), "T": None, "accuracy": r["accuracy"],
                  "train_seconds": r["train_seconds"], "source": str(path)}
                 for r in run["rows"] if r["method"] == "full"
                 and not any(a["method"] == name and a["seed"] == r["seed"] for a in accs)]

    def keep() -> None:
        harness.save_partial(args.out, {"memory_time": rows, "accuracy": accs})

    forward = [a for o in args.overrides for a in ("--set", o)]
    common = ["--batch", str(args.batch), "--steps", str(args.steps), "--model", args.model, "--threads",
              str(args.threads)] + forward

    def subprocess_json(extra: list[str]):
        proc = subprocess.run([sys.executable, __file__, *extra, *common], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{' '.join(extra)} failed:\n{proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    for T in args.T:
        if all(any(r["method"] == name and r["T"] == T for r in rows) for name in args.methods):
            continue
        seconds = subprocess_json(["--time", str(T), "--methods", *args.methods])
        for name in args.methods:
            r = subprocess_json(["--one", name, str(T)])
            r |= {"step_seconds": seconds[name],
                  "epoch_seconds": seconds[name] * math.ceil(EPOCH_EXAMPLES / args.batch)}
            rows.append(r)
            keep()
            print(f"T={T:3d} {name:8s} epoch {r['epoch_seconds']:7.1f} s, step peak {r['step_peak_bytes'] / 2**20:8.1f}"
                  f" MiB, graph peak {r['graph_peak_bytes'] / 2**20:8.1f} MiB", flush=True)
    if args.accuracy:
        names = list(args.methods) + [f"sltt-k{k}" for k in args.ks if f"sltt-k{k}" not in args.methods]
        for seed in args.seeds:
            for name in names:
                if any(a["method"] == name and a["seed"] == seed for a in accs):
                    continue
                accs.append(accuracy(args, name, seed))
                keep()
                print(f"{name}: accuracy {accs[-1]['accuracy']:.4f}, {accs[-1]['train_seconds']:.0f} s (seed {seed})",
                      flush=True)
    if args.where and args.T:
        T = max(args.T)
        text = "\n\n".join(where(args, name, T) for name in args.methods)
        harness.write_text(args.out.with_name(args.out.name + "_where.txt"), text + "\n")
    text = table(rows, accs)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {k: [str(p) for p in v] if isinstance(v, list) and v and isinstance(v[0], Path) else v
             for k, v in vars(args).items()} | {"out": str(args.out)}
    harness.write_json(args.out.with_suffix(".json"), {"setup": setup,
                                                         "memory_time": rows, "accuracy": accs}, indent=1)
    harness.write_text(args.out.with_suffix(".txt"), text + "\n")
    plot(rows, accs, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
