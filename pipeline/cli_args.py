"""The command line's options: one argparse parser per command (their long texts are in help_text.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config import expand_home
from pipeline.help_text import (
    DATA_EPILOG,
    DESCRIPTION,
    DISTILL_DESCRIPTION,
    DISTILL_EPILOG,
    OVERWRITE_HELP,
    RECHECK_DESCRIPTION,
    RUN_EPILOG,
    VERIFY_DESCRIPTION,
    VERIFY_EPILOG,
)


def _path(text: str) -> Path:
    """A path argument, ``~`` expanded (the shell leaves it alone in ``--input=~/x``)."""
    return Path(expand_home(text))


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other error of this tool (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
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
                                   "sources are in hardware/chip/loihi2.py.")
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
