"""The fine-tuning stage: every asked model x task x method, trained on each training fold of the run's own plan.

The folds are the probes' (``clip_checks.fold_inputs`` + ``probes.make_cv`` with the run's folds, repeats, scheme
and seed). Each training fold is split into a fit part and a validation part by group
(:func:`.data.validation_split`); the test fold is only scored. A fine-tuned method brings the ``head`` rung with
it (frozen encoder, same head: cheap, its frames are computed once), so the ladder has both. Finished folds are
files (:mod:`.outputs`); a rerun skips them. With ``--engine ray`` the folds train on Ray actors and the driver
writes their files (:mod:`.folds`). Afterwards the ladder analysis runs and the report is rebuilt.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..clip_checks import fold_inputs
from ..config import RunConfig, check_engine
from ..errors import ConfigError
from ..features.extract import ClipMeta
from ..interrupts import saved, say
from ..models.base import RANDOM_SUFFIX
from ..models.registry import families, family, load_model, resolve_model
from ..pipeline import load_extracted
from ..probes import make_cv
from ..rundir import RunDir
from .data import shuffled, task_audio, validation_split
from .folds import LocalFolds, PairSpec, RayFolds
from .outputs import fold_file, write_fold, write_tables
from .settings import FINETUNE_METHODS, FinetuneSettings
from .train import FoldData

log = logging.getLogger("speechprobe")
DEFAULT_BATCH_SECONDS = {"cpu": 32.0, "cuda": 240.0}
# Settings that change no number of a fold (which models and methods run; files are keyed by them).
NOT_NUMBERS = ("method", "models", "shuffle", "keep_checkpoints", "device")


def stage_config(cfg: RunConfig, settings: FinetuneSettings) -> dict:
    """The fingerprint's settings: the fine-tuning hyper-parameters and the run's fold plan."""
    from dataclasses import asdict

    own = {k: v for k, v in asdict(settings).items() if k not in NOT_NUMBERS}
    plan = {"folds": cfg.cv.folds, "repeats": cfg.cv.repeats, "cv": cfg.cv.scheme, "ungrouped": cfg.cv.ungrouped}
    return {**own, **plan, "seed": cfg.compute.seed, "window": cfg.compute.window}


def methods_of(settings: FinetuneSettings) -> list[str]:
    """The methods to run: the asked one, after ``head`` when it fine-tunes the encoder (the ladder's rung below)."""
    if settings.method is None:
        raise ConfigError(f"--finetune: choose one of {', '.join(FINETUNE_METHODS)}")
    return ["head", settings.method] if settings.method != "head" else ["head"]


def check_models(specs: list[str]) -> None:
    """Every asked model has a trainable encoder; else one line naming it and the families that do."""
    able = ", ".join(f.name for f in families().values() if f.trainable is not None)
    for spec in specs:
        fam = family(resolve_model(spec.removesuffix(RANDOM_SUFFIX), convert=False)[0].family)
        if fam.trainable is None:
            raise ConfigError(f"--ft-models {spec}: {fam.title} has no trainable encoder; fine-tune one of: {able}")


def run_finetune(
    run_dir: Path,
    settings: FinetuneSettings,
    existing: str = "auto",
    progress: bool = False,
    engine: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Fine-tune the run in ``run_dir`` (extracted and probed) with ``settings``; returns finetune.csv's rows.
    ``engine``: ``engine``, ``ray_address``, ``ray_actors`` for this call [default: the run's own]; with
    ``engine="ray"`` the folds train on Ray actors (:class:`.folds.RayFolds`), with the same rows."""
    settings.validate()
    methods = methods_of(settings)
    cfg, clips, state = load_extracted(Path(run_dir))
    if engine:
        cfg.compute = replace(cfg.compute, **engine)
        check_engine(cfg.compute.engine, cfg.compute.ray_address, cfg.compute.ray_actors)
    specs = settings.models or list(cfg.models)
    if not specs:
        raise ConfigError(f"{run_dir}: the run has no --models to fine-tune (pass --ft-models)")
    check_models(specs)
    device = torch.device(settings.device or cfg.compute.device)
    dtype = settings.dtype or cfg.compute.dtype
    if dtype == "fp16":
        raise ConfigError("fine-tuning runs in float32 or bf16; pass --ft-dtype bf16 or float32")
    rd = RunDir(run_dir)
    with rd.lock():
        if rd.claim("finetune", stage_config(cfg, settings), existing) == "resumed":
            say(f"resuming {run_dir}: finished folds are kept")
        folds = (
            RayFolds(cfg.compute.ray_address, cfg.compute.ray_actors, device) if cfg.compute.engine == "ray" else None
        )
        try:
            for spec in specs:
                _model(rd.root, cfg, clips, state.tasks, spec, methods, settings, device, dtype, progress, folds)
        finally:
            if folds is not None:
                folds.close()
        rows = write_tables(rd.root)
    return rows


def _model(run_dir, cfg, clips, tasks, spec, methods, settings, device, dtype, progress, folds) -> None:
    """Every task and method of one model (``folds``: a :class:`RayFolds`, else this process trains)."""
    base = spec.removesuffix(RANDOM_SUFFIX)
    random_init = cfg.random_init or base != spec
    budget = settings.batch_seconds or DEFAULT_BATCH_SECONDS.get(device.type, DEFAULT_BATCH_SECONDS["cpu"])
    seed = cfg.compute.seed
    # its name, depth, rate and input limit, on the CPU (on Ray the driver may hold no GPU)
    adapter = load_model(base, window=cfg.compute.window, device="cpu", random_init=random_init, seed=seed)
    name, last, rate, limit = adapter.name, adapter.num_layers - 1, adapter.sample_rate, adapter.max_seconds()
    del adapter  # each pair trains a fresh one (folds.Trainer)
    runner = folds or LocalFolds()
    audio = None
    for method in methods:
        probe = f"ft-{method}" + ("-shuffled" if settings.shuffle else "")
        for task, metas in clips.items():
            labels, groups = fold_inputs(cfg, metas)
            try:
                plan = make_cv(labels, groups, cfg.cv.folds, seed, cfg.cv.repeats, cfg.cv.scheme)
            except ConfigError as e:  # a task the probes could not fold either: said once, the others go on
                log.warning("not fine-tuned: %s", e)
                continue
            key = {"model": name, "task": task, "probe": probe, "layer": last}
            todo = [j for j in range(len(plan.folds)) if not fold_file(run_dir, name, task, probe, j).is_file()]
            if not todo:
                continue
            if audio is None:  # read once per model (every method of it reads the same inputs)
                audio = task_audio(cfg, clips, rate, limit)
            label_set = tasks.get(task, {}).get("label_set") or sorted(set(labels))
            codes = _codes(metas, label_set)
            g = None if groups is None else np.asarray(groups)
            data = []
            for j in todo:
                train, test = plan.folds[j]
                fit, val = validation_split(train, codes, g, settings.val_fraction, seed + j)
                train_codes = shuffled(codes, train, seed + j) if settings.shuffle else codes
                data.append(FoldData(j, fit, val, test, train_codes, codes))
            pair = PairSpec(
                base,
                random_init,
                cfg.compute.window,
                str(device),
                seed,
                method,
                len(label_set),
                budget,
                settings,
                dtype,
            )
            bar = tqdm(total=len(todo), desc=f"fine-tune {name} × {task} ({probe})", unit="fold", disable=not progress)
            for j, result in runner.run(f"{name}|{random_init}|{method}|{task}", pair, audio[task], data):
                write_fold(run_dir, key, j, result, settings.keep_checkpoints)
                saved("finetune", f"fold {j} of {name} × {task} ({probe})")
                bar.update()
            bar.close()


def _codes(metas: list[ClipMeta], label_set: list[str]) -> np.ndarray:
    """Each clip's label as its index in the task's label set."""
    index = {label: k for k, label in enumerate(label_set)}
    return np.array([index[m.label] for m in metas], dtype=np.int64)


def finish(run_dir: Path, progress: bool = False, report: bool | None = None) -> None:
    """After fine-tuning: the ladder analysis on the run's tables, then report.html again (``report`` None: when the
    run writes one or has one)."""
    from ..analysis.plan import analyse
    from ..report import build_report

    cfg, _, _ = load_extracted(Path(run_dir))
    if not (Path(run_dir) / "results.csv").is_file():
        log.warning("%s: no probe results, so no ladder; `speechprobe probe %s` adds them", run_dir, run_dir)
        return
    analyse(Path(run_dir), "ladder", reuse=False, progress=progress)
    if (cfg.analyses.report or (Path(run_dir) / "report.html").is_file()) if report is None else report:
        build_report(Path(run_dir), progress=progress)
