"""Command line: ``python -m pipeline run --target lava``."""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path

from pipeline.config import QUICK, TARGETS, ConfigError, RunConfig, apply_overrides, expand_home
from pipeline.help_text import (DATA_EPILOG, DESCRIPTION, DISTILL_DESCRIPTION, DISTILL_EPILOG, OVERWRITE_HELP,
                                RECHECK_DESCRIPTION, RUN_EPILOG, VERIFY_DESCRIPTION, VERIFY_EPILOG)


def resolve(cfg: RunConfig) -> RunConfig:
    """The dataset's defaults filled in (imported here: the data layer pulls in torch and tonic, which --help and
    a mistyped setting should not wait for)."""
    from pipeline.data.registry import resolve as fill
    return fill(cfg)


def _path(text: str) -> Path:
    """A path argument, ``~`` expanded (the shell leaves it alone in ``--input=~/x``)."""
    return Path(expand_home(text))


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other error of this tool (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m pipeline", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_run_parser, _distill_parser, _check_parser, _verify_parser, _recheck_parser, _data_parser):
        add(sub)
    return p


def _run_parser(sub) -> None:
    r = sub.add_parser("run", help="train, export and verify on a backend", description=DESCRIPTION,
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--target", default="lava",
                   help="lava (reference + Lava fixed_pt), onnx (reference + integer ONNX in onnxruntime), "
                        "netx (reference + lava-dl's netx network from model.net in Lava), reference, or all")
    r.add_argument("--out", help="run folder to create (default runs/<timestamp>)")
    r.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    r.add_argument("--samples", type=int, help="test samples to verify, at least 1 (default: the whole test split)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration value, e.g. train.epochs=3 (repeatable)")
    r.add_argument("--quick", action="store_true", help="a tiny configuration for tests (seconds, not minutes)")
    r.add_argument("--workers", type=int, help="parallel Lava simulations (default 2)")
    r.add_argument("--vectors", type=int, help="test samples stored as test vectors in vectors.h5 for the hand-off "
                                               "and recheck (default 32)")


def _distill_parser(sub) -> None:
    x = sub.add_parser("distill", help="distil the training split into a few event frames per class (PACE)",
                       description=DISTILL_DESCRIPTION, epilog=DISTILL_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("--ipc", type=int, help="synthetic samples per class (default 10)")
    x.add_argument("--method", help="pace (default), cf, dm, random, herding or kcenter")
    x.add_argument("--out", required=True, help="folder to create (written whole when done)")
    x.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    x.add_argument("--iterations", type=int, help="optimisation steps (default 300)")
    x.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any configuration value, e.g. distill.sdr_k=0 or data.name=nmnist (repeatable)")
    x.add_argument("--quick", action="store_true", help="a tiny configuration for tests (seconds)")


def _check_parser(sub) -> None:
    c = sub.add_parser("check", help="check a NIR graph against Loihi 2's limits and estimate its resources",
                       description="Check what a NIR graph would deploy as against Loihi 2's limits, naming layer, "
                                   "parameter, value and limit (exit 1 on any violation); otherwise estimate the "
                                   "cores it needs (a convolution's shared kernel counted once). Our graphs are read "
                                   "from their integer metadata; any other graph is discretised and quantised as "
                                   "`verify` does (--dt, --method, --source). Limits, chip resources and their "
                                   "sources are in hardware/loihi2.py.")
    c.add_argument("graph", type=_path, help="a .nir file, e.g. runs/<run>/model.nir")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument("--source", help="whose convention a graph without our metadata follows (as verify)")
    c.add_argument("--dt", type=float, help="time step in seconds (as verify)")
    c.add_argument("--method", choices=["exp", "euler"], help="discretisation (as verify)")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a graph.* setting, e.g. graph.source=sinabs (repeatable; the options above win)")


def _verify_parser(sub) -> None:
    v = sub.add_parser("verify", help="verify any NIR graph (snnTorch, Norse, Sinabs, ...) on Lava, three ways",
                       description=VERIFY_DESCRIPTION, epilog=VERIFY_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("graph", type=_path, help="a .nir file")
    v.add_argument("--target", choices=["lava", "reference"],
                   help="lava (default: float graph, integer reference and Lava fixed_pt), or reference (float "
                        "graph vs integer reference only, no Lava: a quick look at what quantisation does)")
    v.add_argument("--out", help="report folder to create (default runs/verify-<timestamp>)")
    v.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    v.add_argument("--source", help="whose convention the graph's parameters follow: nir (default: "
                                                   "exp, dt from metadata), snntorch, sinabs, norse, rockpool or "
                                                   "spyx (see below); for other frameworks give --dt and --method")
    v.add_argument("--dt", type=float, help="time step in seconds (overrides the preset and the graph metadata)")
    v.add_argument("--method", choices=["exp", "euler"], help="discretisation (overrides the preset)")
    v.add_argument("--input", type=_path, help=".npy/.npz spikes of shape (T, *input) or (B, T, *input); "
                                              "default random spikes")
    v.add_argument("--data", metavar="NAME", help="run the test recordings of a dataset the pipeline reads (digits, "
                                                  "fashion, nmnist, dvsgesture, cifar10dvs, spoken_digits, shd) "
                                                  "and report task accuracy: float graph with its framework's "
                                                  "reset and with Loihi 2's, integer reference, Lava (and netx)")
    v.add_argument("--root", help="--data: the dataset's folder, as its publisher distributes it")
    v.add_argument("--bin-us", type=float, help="--data: microseconds per time step (default: the graph's own bins, "
                                                "or its dt when physical)")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting of graph.*, input.*, verify.* or (with --data) data.*, e.g. verify.chunk=100 "
                        "or data.n_test=200 (repeatable; the options above win; see pipeline/jobs.py)")
    v.add_argument("--samples", type=int, help="random input samples (default 4), or with --data N test recordings "
                                               "drawn stratified by class, seeded by --seed (default all)")
    v.add_argument("--steps", type=int, help="time steps (default 20 for random input; pads a file's input)")
    v.add_argument("--rate", type=float, help="random input: spike probability per input and step (default 0.2)")
    v.add_argument("--seed", type=int, help="random input's seed, or --data's draw of --samples (default 0)")
    v.add_argument("--workers", type=int, help="parallel Lava simulations (default 2, as run)")
    v.add_argument("--vectors", type=int, help="samples stored as test vectors in vectors.h5 (default 32)")
    v.add_argument("--netx", action="store_true", help="quantise with weight exponents 0 and 1 only (thresholds "
                                                       "lowered to match), so that lava-dl netx can store every "
                                                       "layer in model.net; the quantisation table shows the cost")


def _recheck_parser(sub) -> None:
    k = sub.add_parser("recheck", help="re-check a run or verify folder from its files alone (hashes, vectors)",
                       description=RECHECK_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    k.add_argument("folder", type=_path, help="a folder written by run or verify (holding certificate.json)")
    k.add_argument("--workers", type=int, help="parallel Lava simulations (default 2, as run)")
    k.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a verify.* setting, e.g. verify.workers=4 (repeatable; --workers wins)")
    k.add_argument("--json", action="store_true", help="also print the per-backend results as JSON")


def _data_parser(sub) -> None:
    d = sub.add_parser("data", help="read a dataset folder and print a JSON summary of what was read",
                       description="Read (and cache the framed tensors of) a dataset, then print samples per split "
                                   "and class, sensor size, events per sample, durations and skipped files.",
                       epilog=DATA_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--name", required=True, help="digits, fashion, nmnist, dvsgesture, cifar10dvs, spoken_digits or shd")
    d.add_argument("--root", default="", help="the dataset folder, laid out as its publisher distributes it")
    d.add_argument("--skip-bad", action="store_true", help="skip unreadable files and list them (data.on_error=skip)")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="framing settings, e.g. data.n_bins=20 data.downsample=2")


class UsageError(ValueError):
    pass


def _config(args) -> RunConfig:
    if args.target not in TARGETS:
        raise UsageError(f"unknown target {args.target!r}; choose one of {sorted(TARGETS)}")
    items = [f"{k}={v}" for k, v in QUICK.items()] if args.quick else []
    items += args.overrides
    if args.samples is not None:
        if args.samples < 1:
            raise UsageError(f"--samples {args.samples}: give at least 1 (leave --samples out for the whole test "
                             "split)")
        items.append(f"verify.samples={args.samples}")
    if args.workers is not None:
        items.append(f"verify.workers={args.workers}")
    if args.vectors is not None:
        items.append(f"verify.vectors={args.vectors}")
    return resolve(apply_overrides(RunConfig(), items))


def _data_config(args) -> RunConfig:
    items = [f"data.name={args.name}", f"data.root={args.root}"] + args.overrides
    if args.skip_bad:
        items.append("data.on_error=skip")
    return resolve(apply_overrides(RunConfig(), items))


def _init_distributed(cfg: RunConfig, cpu_only: bool = False) -> None:
    """Under torchrun (WORLD_SIZE > 1): join the process group (gloo on CPU, nccl on CUDA; gloo for ``cpu_only``
    work such as verify's simulations) and share the cores."""
    import os
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return
    import torch
    import torch.distributed as dist
    if not dist.is_initialized():
        cuda = not cpu_only and (cfg.train.device == "cuda" or (cfg.train.device == "auto" and
                                                                 torch.cuda.is_available()))
        dist.init_process_group("nccl" if cuda else "gloo")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))


def _out(args, default: Path) -> Path:
    if args.out is None:
        return default
    if not args.out.strip():
        raise UsageError("--out is empty: give the folder to write")
    out = expand_home(args.out)
    if out.startswith("~"):
        raise UsageError(f"--out {args.out}: {out.split('/')[0]!r} names no user's home folder here")
    return Path(out)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised by our own SIGINT handler. A plain KeyboardInterrupt that passes through code run by
    ``PyRun_*`` (some libraries do) marks the interpreter, which then ends itself by SIGINT however the exception
    was handled (exit status -2, seen in tests); CPython checks for that exact type, so a subclass avoids it."""


def _raise_interrupted(signum, frame):
    raise Interrupted()


def _terminated(signum, frame):
    raise SystemExit(128 + signum)          # SIGTERM: end through the same clean-up as any other exit


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pipeline import scratch
    scratch.process_scratch()               # lava-* and pymp-* folders go there, and go when the process does
    # Lava's processes share memory; when a run is interrupted and its workers are killed, Python's resource
    # tracker (a process of its own, started with this interpreter's -W options) frees those segments and warns
    # about each. The freeing is what we want; the warnings under the one-line message are not.
    if "ignore:resource_tracker:UserWarning" not in sys.warnoptions:
        sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupted)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("interrupted: no output folder was written or changed (they are only ever replaced whole)",
              file=sys.stderr)
        return 130
    finally:
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)


def _main(args) -> int:
    # Imported late so that --help and argument errors answer at once.
    from hardware.errors import GraphError, LavaError
    from pipeline.certify.errors import CertificateError
    from pipeline.data.formats.errors import EventFileError
    from pipeline.data.layout import DataError
    from pipeline.runfolder import OutputError
    from pipeline.train.errors import TrainingError
    try:
        return _dispatch(args)
    except (UsageError, ConfigError, DataError, EventFileError, GraphError, OutputError, TrainingError,
            CertificateError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except LavaError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


def _dispatch(args) -> int:
    """Run one command; the exit status comes from its verdict (hardware/equivalence.py VERDICTS)."""
    return {"check": _check, "distill": _distill, "recheck": _recheck, "verify": _verify, "data": _data,
            "run": _run}[args.command](args)


def _check(args) -> int:
    from pipeline.commands.check import check
    from pipeline.jobs import CheckJob
    if args.dt is not None and not (math.isfinite(args.dt) and args.dt > 0):
        raise UsageError(f"--dt {args.dt:g} is not a time step: give a positive, finite number of seconds")
    items = list(args.overrides) + [f"graph.{k}={v}" for k in ("source", "dt", "method")
                                    if (v := getattr(args, k)) is not None]
    return check(args.graph, apply_overrides(CheckJob(), items), as_json=args.json)


def _distill(args) -> int:
    from pipeline.commands.distill import distill, summary as distill_summary
    items = [f"{k}={v}" for k, v in QUICK.items()] if args.quick else []
    items += [f"distill.{k}={v}" for k in ("ipc", "method", "iterations")
              if (v := getattr(args, k)) is not None] + args.overrides
    out = _out(args, None)
    cfg = resolve(apply_overrides(RunConfig(), items))
    _init_distributed(cfg)
    meta = distill(cfg, out, overwrite=args.overwrite)
    if meta is not None:            # under torchrun, rank 0 writes and reports
        print(distill_summary(meta, out))
    return 0


def _recheck(args) -> int:
    from pipeline.commands import recheck
    from pipeline.jobs import RecheckJob
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give at least 1")
    items = list(args.overrides) + ([f"verify.workers={args.workers}"] if args.workers is not None else [])
    result = recheck.recheck(args.folder, workers=apply_overrides(RecheckJob(), items).verify.workers)
    print("\n".join(result.lines()))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    return result.exit_code


def _verify(args) -> int:
    from pipeline.commands import verify as v
    from pipeline.jobs import VERIFY_FLAGS, verify_job
    from pipeline.report.summary import verify_summary
    from pipeline.runfolder import default_dir
    from pipeline.train.ranks import rank_world
    job = verify_job(args.overrides, **{k: getattr(args, k) for k in VERIFY_FLAGS})
    out = _out(args, default_dir().with_name(f"verify-{default_dir().name}"))
    _init_distributed(RunConfig(), cpu_only=True)
    if rank_world()[0] != 0:        # under torchrun: simulate this rank's share, rank 0 reports
        from pipeline.train import ranks
        ranks.serve()
        return 0
    report = v.verify(args.graph, out, job, overwrite=args.overwrite)
    print(verify_summary(report, out))
    return report.verification.exit_code


def _data(args) -> int:
    from pipeline.data import dataset
    cfg = _data_config(args).data
    print(json.dumps(dataset.summary(cfg, *dataset.load(cfg)), indent=2))
    return 0


def _run(args) -> int:
    from pipeline.runfolder import default_dir
    cfg = _config(args)                     # a bad setting answers before the heavy imports
    out = _out(args, default_dir())
    from pipeline.commands.run import run, serve
    from pipeline.report.summary import run_summary
    from pipeline.train.ranks import rank_world
    _init_distributed(cfg)
    if rank_world()[0] != 0:            # under torchrun: train and verify this rank's share, rank 0 reports
        serve(cfg)
        return 0
    report = run(cfg, args.target, out, overwrite=args.overwrite)
    print(run_summary(report, out))
    return report.verification.exit_code
