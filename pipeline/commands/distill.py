"""``pipeline distill``: real training split -> teachers -> synthetic (or selected) set -> distilled folder."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline.config import DistillConfig, RunConfig
from pipeline.data import sets
from pipeline.data.split import Split
from pipeline.distill import checkpoint as checkpoints
from pipeline.distill import coreset, keep, pace, probes, store
from pipeline.ranks import rank_world
from pipeline.report import plots
from pipeline.runfolder import staged


def side_files(out: Path) -> tuple[Path, Path]:
    """Checkpoint and teacher-pool files kept beside ``out`` while a distillation is unfinished."""
    return out.parent / f".{out.name}.distill-checkpoint.pt", out.parent / f".{out.name}.distill-teachers.pt"


def teachers(cfg: RunConfig, split: Split, cache: Path) -> list[probes.Teacher]:
    """The teacher pool, reused from ``cache`` when it was trained for the same configuration: ``distill.teachers``
    of them for trained probes, one for the herding and k-center embedding (the first of them embeds a herding
    start)."""
    x = cfg.distill
    n = x.teachers if x.method in pace.OPTIMISED and x.pool != "random" else 1
    cfg = replace(cfg, distill=replace(x, teachers=n))
    key = pace.config_key(replace(cfg, distill=DistillConfig(teachers=n, teacher_epochs=x.teacher_epochs,
                                                             teacher_samples=x.teacher_samples, seed=x.seed)))
    saved = checkpoints.load(cache, key)
    if saved is not None:
        print(f"reusing {len(saved['pool'])} trained teachers from {cache}", flush=True)
        return [probes.Teacher(t["init"], t["final"]) for t in saved["pool"]]
    pool = probes.train_teachers(cfg, split.frames, split.labels, len(split.classes))
    checkpoints.save(cache, key, {"pool": [{"init": t.init, "final": t.final} for t in pool]})
    return pool


def distill(cfg: RunConfig, out: Path, overwrite: bool = False) -> dict | None:
    """Distil ``cfg.data``'s training split with ``cfg.distill`` into the folder ``out`` (written whole at the
    end; an earlier distilled folder there only with ``overwrite``). Under torchrun the teachers train with DDP
    and the classes are split across ranks; rank 0 writes the folder and the other ranks return None."""
    out = Path(out)
    if rank_world()[0] != 0:
        return _distill(cfg, out, None)
    with staged(out, "distill", overwrite) as stage:      # checks and claims out before any work
        meta = _distill(cfg, out, stage)
    checkpoint, teacher_file = side_files(out)
    for f in (checkpoint, teacher_file, *out.parent.glob(f".{out.name}.distill-checkpoint.pt.rank*")):
        f.unlink(missing_ok=True)
    return meta


def _distill(cfg: RunConfig, out: Path, stage: Path | None) -> dict | None:
    rank, world = rank_world()
    x, t_start, timings = cfg.distill, time.perf_counter(), {}
    if world > 1 and rank != 0:
        torch.distributed.barrier()          # rank 0 reads (and caches) the data first
    split, val = sets.real_train(cfg.data)    # validation stays out of it: it judges the set (distill.keep)
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    n_classes = len(split.classes)
    checkpoint, teacher_file = side_files(out)
    pool = None
    if pace.needs_teachers(cfg):
        t0 = time.perf_counter()
        pool = teachers(cfg, split, teacher_file)
        timings["teachers_s"] = time.perf_counter() - t0
    history, resumed, probabilities, checks = [], 0, None, {}
    if x.method in pace.OPTIMISED:
        judge = keep.judge(cfg, val.frames, val.labels, n_classes) if len(val.labels) else None     # distill.keep
        result = pace.optimise(cfg, split.frames, split.labels, n_classes, pool, checkpoint, judge)
        frames, labels, history, resumed = result.frames, result.labels, result.history, result.resumed_from
        probabilities = result.probabilities
        if result.checks:
            checks = {"validation_samples": len(val.labels), "checks": result.checks, "kept_step": result.kept_step}
        timings["optimise_s"] = result.seconds
    elif rank != 0:
        return None
    else:
        t0 = time.perf_counter()
        emb = probes.teacher_features(cfg, split.frames, n_classes, pool[0]) if x.method != "random" else None
        idx = coreset.select(x.method, split.labels, n_classes, x.ipc, np.random.default_rng([x.seed, 23]), emb)
        frames, labels = split.frames[idx], split.labels[idx]
        timings["select_s"] = time.perf_counter() - t0
    if rank != 0:
        return None
    timings["total_s"] = time.perf_counter() - t_start
    real_events = int(split.n_events.sum()) * 5
    meta = {"method": x.method, "ipc": x.ipc, "data": cfg.to_dict()["data"], "model": cfg.to_dict()["model"],
            "distill": cfg.to_dict()["distill"], "train": cfg.to_dict()["train"],
            "real_train_samples": len(split.labels),
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "loss": {"steps": len(history), "first": history[0] if history else None,
                     "last": history[-1] if history else None, "resumed_from_step": resumed},
            "kept": checks or None,
            "storage": {"real_frames_bytes": int(split.frames.nbytes), "real_events_bytes_nmnist": real_events}}
    meta = store.save(stage, frames, labels, split.classes, meta, probabilities)
    s = meta["storage"]
    s["frames_ratio"] = round(s["real_frames_bytes"] / max(s["frames_bytes"], 1), 1)
    s["events_ratio"] = round(s["real_events_bytes_nmnist"] / max(s["events_bytes"], 1), 1)
    store.write_meta(stage, meta)
    plots.event_frames(stage / "samples.png", frames, labels, split.classes)
    if history:
        plots.distill_loss(stage / "loss.png", history)
    return meta


def summary(meta: dict, out: Path) -> str:
    s, t = meta["storage"], meta["timings_s"]
    lines = [f"distilled {meta['samples']} samples ({meta['method']}, IPC {meta['ipc']}) from "
             f"{meta['real_train_samples']} real training samples",
             f"storage: frames {s['frames_bytes']:,} bytes ({s['frames_ratio']}x smaller than the real frames), "
             f"events {s['events_bytes']:,} bytes as N-MNIST files ({s['events_ratio']}x smaller)",
             "time: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items())]
    if meta["loss"]["steps"]:
        lines.append(f"matching loss: {meta['loss']['first']:.4f} -> {meta['loss']['last']:.4f} "
                     f"over {meta['loss']['steps']} steps")
    if meta.get("kept"):
        k = meta["kept"]
        lines.append("validation checks (a fresh SNN trained on the set): " + ", ".join(
            f"step {int(step)} {acc:.4f}" for step, acc in k["checks"]) + f"; kept step {k['kept_step']}"
            + (" (the start: optimisation did not beat it)" if k["kept_step"] == 0 else ""))
    lines.append(f"folder: {out} (distilled.npz, events/, meta.json, samples.png"
                 + (", loss.png)" if meta["loss"]["steps"] else ")"))
    lines.append(f"train on it: python -m pipeline run --set data.distilled={out}")
    return "\n".join(lines)
