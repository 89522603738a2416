"""Command line: ``python -m pipeline run --target lava``."""
from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path

from pipeline.cli_args import parser
from pipeline.config import (
    QUICK,
    TARGETS,
    ConfigError,
    RunConfig,
    apply_overrides,
    expand_home,
)


def resolve(cfg: RunConfig) -> RunConfig:
    """The dataset's defaults filled in (imported here: the data layer pulls in torch and tonic, which --help and
    a mistyped setting should not wait for)."""
    from pipeline.data.registry import resolve as fill
    return fill(cfg)


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
    args = parser().parse_args(argv)
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
    """Run one command; the exit status comes from its verdict (hardware/judge/results.py VERDICTS)."""
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
    from pipeline.commands.distill import distill
    from pipeline.commands.distill import summary as distill_summary
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
    from pipeline.ranks import rank_world
    from pipeline.report.summary import verify_summary
    from pipeline.runfolder import default_dir
    job = verify_job(args.overrides, **{k: getattr(args, k) for k in VERIFY_FLAGS})
    out = _out(args, default_dir().with_name(f"verify-{default_dir().name}"))
    _init_distributed(RunConfig(), cpu_only=True)
    if rank_world()[0] != 0:        # under torchrun: simulate this rank's share, rank 0 reports
        from pipeline import ranks
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
    from pipeline.ranks import rank_world
    from pipeline.report.summary import run_summary
    _init_distributed(cfg)
    if rank_world()[0] != 0:            # under torchrun: train and verify this rank's share, rank 0 reports
        serve(cfg)
        return 0
    report = run(cfg, args.target, out, overwrite=args.overwrite)
    print(run_summary(report, out))
    return report.verification.exit_code
