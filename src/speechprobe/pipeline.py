"""The end-to-end pipeline: tasks -> extraction -> probes -> run directory.

Stages write what they finish into the run directory as they go (clip lists, per (model, task)
probe results), and the feature store keeps every extracted clip, so a rerun of the same
command resumes where an interrupted one stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .cache import cache_root
from .config import RunConfig
from .data.resolve import open_task
from .data.source import ClipSource, Skip
from .data.tasks import Task
from .errors import ConfigError, SpeechprobeError
from .features.extract import ClipMeta, extract
from .features.store import FeatureSpace, FeatureStore
from .models.base import RANDOM_SUFFIX
from .models.registry import family, load_model, resolve_model
from .rundir import (
    RESULT_COLUMNS,
    ensure_writable,
    sort_results,
    versions,
    write_csv,
    write_json,
)

if TYPE_CHECKING:
    from .zeroshot import ZeroShotConfig

log = logging.getLogger("speechprobe")


@dataclass
class TaskRecord:
    """What the run knows about one task after extraction."""

    task: Task
    source: ClipSource
    clips: list[ClipMeta] = field(default_factory=list)


@dataclass
class RunState:
    """Accumulated facts for manifest.json."""

    models: dict[str, dict] = field(default_factory=dict)  # name -> adapter info + space
    tasks: dict[str, dict] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)
    truncated: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extraction: dict[str, dict] = field(default_factory=dict)
    probing: dict[str, dict] = field(default_factory=dict)  # wall seconds per (model, task) probed in this call
    cv: dict[str, dict] = field(default_factory=dict)  # per task: fold plan and per-fold class coverage


def _model_list(cfg: RunConfig) -> list[str]:
    return list(dict.fromkeys([*cfg.models, *cfg.baselines]))


def _weights(name: str, cfg: RunConfig) -> tuple[str, bool]:
    """The model to load and whether its weights are random: ``--random-init`` randomises every model;
    ``<model>+random`` in --models adds the random-init control beside its trained twin in one run."""
    base = name.removesuffix(RANDOM_SUFFIX)
    spec, _ = resolve_model(base, convert=False)
    if base != name and not family(spec.family).has_weights:
        raise ConfigError(f"--models {name}: {base} is a fixed recipe with no weights to randomise")
    return base, cfg.random_init or base != name


def _open_tasks(cfg: RunConfig, root: Path) -> list[TaskRecord]:
    """Open every task and check its class sizes before any extraction."""
    records = [
        TaskRecord(
            *open_task(
                t,
                root,
                cfg.seed,
                cfg.n_per_class,
                cfg.progress,
                columns=cfg.columns,
                split=cfg.split,
                streaming=cfg.streaming,
            )
        )
        for t in dict.fromkeys(cfg.tasks)
    ]
    seen: set[str] = set()
    for rec, spec in zip(records, dict.fromkeys(cfg.tasks)):
        if rec.task.name in seen:  # two manifests both called manifest.csv: name the later by its folder
            rec.task = dataclasses.replace(rec.task, name=f"{rec.task.name}@{Path(spec).parent.name or spec}")
            rec.source.task = rec.task.name
        seen.add(rec.task.name)
    for rec in records:
        labels = getattr(rec.source, "labels", None)
        if labels is not None:
            labels = labels()
            _check_classes(rec.task.name, labels, 2 if cfg.cv == "logo" else cfg.folds)
            groups = getattr(rec.source, "groups", None)
            if groups is not None and not cfg.ungrouped:
                _check_groups(rec.task.name, labels, groups(), cfg)
    return records


def _check_groups(task: str, labels: list[str], groups: list[str | None] | None, cfg: RunConfig) -> None:
    """Every class needs as many groups (speakers) as the folds: else one line naming the classes and the fixes."""
    from .probes.cv import group_shortfall, min_groups_needed

    short = group_shortfall(labels, groups, cfg.folds, cfg.cv)
    if not short:
        return
    listed = ", ".join(f"{c!r} {n}" for c, n in sorted(short.items(), key=lambda kv: (kv[1], kv[0])))
    fewest = min(short.values())
    fixes = ["--ungrouped (folds ignore the groups; speaker leakage may inflate scores)"]
    if cfg.cv != "logo" and fewest >= 2:
        fixes[:0] = [f"--folds {fewest}", "--cv logo (leave one group out)"]
    want = "--cv logo" if cfg.cv == "logo" else f"--folds {cfg.folds}"
    raise ConfigError(
        f"task {task}: {len(short)} class(es) have fewer groups (speakers) than {want} needs "
        f"({min_groups_needed(cfg.cv, cfg.folds)}): {listed}; use {', '.join(fixes[:-1])}"
        + (" or " if len(fixes) > 1 else "")
        + fixes[-1]
    )


def _check_classes(task: str, labels: list[str], folds: int) -> None:
    counts = Counter(labels)
    if len(counts) < 2:
        raise ConfigError(f"task {task}: only {len(counts)} class left after skipping; it needs at least 2")
    small = {k: v for k, v in counts.items() if v < folds}
    if small:
        worst = min(small, key=small.get)
        raise ConfigError(
            f"task {task}: class {worst!r} has {small[worst]} clips, fewer than --folds {folds}; "
            f"lower --folds to {max(2, min(counts.values()))} or add clips"
        )


def run_extract(cfg: RunConfig) -> tuple[dict[str, list[ClipMeta]], RunState]:
    """Extract every (model, task) into the feature store; record clips and state in RUN/."""
    cfg.validate()
    ensure_writable(cfg.out)
    root = cache_root(cfg.cache)
    store = FeatureStore(root / "features")
    for name in _model_list(cfg):
        _weights(name, cfg)  # unknown names fail before any work
    records = _open_tasks(cfg, root)
    state = RunState()
    budget = cfg.batch_seconds
    for name in _model_list(cfg):
        base, random_init = _weights(name, cfg)
        recipe = dict(
            name=base, window=cfg.window, device=cfg.device, dtype=cfg.dtype, random_init=random_init, seed=cfg.seed
        )
        if cfg.engine == "ray":  # model actors on a Ray cluster; `adapter` has the adapter's name, info, options()
            from .features.ray_engine import RayEngine

            adapter = RayEngine(recipe, address=cfg.ray_address, num_actors=cfg.ray_actors)
            extract_into = adapter.extract
        else:
            adapter = load_model(**recipe)
            extract_into = functools.partial(extract, adapter)
        options = adapter.options()
        if options.get("unmasked_padding"):  # features depend on how much a batch pads each clip
            options["max_batch_seconds"] = budget
        state.models[adapter.name] = {**dataclasses.asdict(adapter.info), "options": options}
        space = _space(store, adapter.name, state.models[adapter.name], cfg.pooling)
        state.models[adapter.name]["space"] = space.root.name
        for rec in records:
            t0 = time.perf_counter()
            report = extract_into(
                rec.source, space, cfg.pooling, budget, cfg.progress, f"{adapter.name}/{rec.task.name}"
            )
            state.extraction[f"{adapter.name}/{rec.task.name}"] = {
                "computed": report.computed,
                "reused": report.reused,
                "seconds": round(time.perf_counter() - t0, 3),
                "max_batch_seconds": budget,
            }
            if report.truncated:
                state.truncated[f"{adapter.name}/{rec.task.name}"] = report.truncated
            if not rec.clips:
                rec.clips = report.clips
                state.skipped.extend(rec.source.skipped)
            elif [c.content_hash for c in rec.clips] != [c.content_hash for c in report.clips]:
                raise SpeechprobeError(f"task {rec.task.name}: the source changed between models; rerun")
        if cfg.engine == "ray":
            adapter.close()  # stop this model's actors (frees their GPUs for the next model)
        del adapter, extract_into
    for rec in records:
        _record_task(rec, cfg, state)
    write_json(cfg.out / "state.json", {"config": cfg.to_json(), **dataclasses.asdict(state)})
    return {rec.task.name: rec.clips for rec in records}, state


def _record_task(rec: TaskRecord, cfg: RunConfig, state: RunState) -> None:
    if not rec.clips:
        raise ConfigError(f"task {rec.task.name}: no usable clips (all {len(rec.source.skipped)} skipped)")
    has_groups = any(c.group for c in rec.clips)
    grouped = has_groups and not cfg.ungrouped
    if not grouped:
        msg = (
            f"task {rec.task.name}: --ungrouped, folds are not grouped by its speaker/group column; "
            "speaker leakage may inflate scores"
            if has_groups
            else f"task {rec.task.name}: no speaker/group column, folds are not grouped; "
            "speaker leakage may inflate scores"
        )
        log.warning(msg)
        state.warnings.append(msg)
    outside = dict(getattr(rec.source, "outside_label_set", {}))
    if not outside and rec.task.labels:
        outside = dict(Counter(c.label for c in rec.clips if c.label not in rec.task.labels))
    state.tasks[rec.task.name] = {
        "source": rec.task.source,
        "fingerprint": rec.source.fingerprint(),
        "paralinguistic": rec.task.paralinguistic,
        "cue": rec.task.cue,
        "labels": dict(sorted(Counter(c.label for c in rec.clips).items())),
        "labels_outside_label_set": outside,
        "group_unmatched": getattr(rec.source, "group_unmatched", 0),
        "singleton_groups": sum(not c.group for c in rec.clips) if grouped else 0,
        "group_caveat": rec.task.group_caveat,
        "n_clips": len(rec.clips),
        "n_skipped": len(rec.source.skipped),
        "grouped_folds": grouped,
    }
    clips = pd.DataFrame([dataclasses.asdict(c) for c in rec.clips])
    state.tasks[rec.task.name]["clips_file"] = f"clips/{_slug(rec.task.name)}.csv"
    write_csv(cfg.out / state.tasks[rec.task.name]["clips_file"], clips)


def load_extracted(run_dir: Path) -> tuple[RunConfig, dict[str, list[ClipMeta]], RunState]:
    """Read back what ``run_extract`` recorded in a run directory."""
    path = run_dir / "state.json"
    if not path.is_file():
        raise SpeechprobeError(f"{run_dir}: no state.json; run `speechprobe extract ... --out {run_dir}` first")
    saved = json.loads(path.read_text())
    cfg = RunConfig.from_json(saved.pop("config"), out=run_dir)
    state = RunState(**{k: v for k, v in saved.items() if k != "skipped"})
    state.skipped = [Skip(**s) for s in saved.get("skipped", [])]
    clips = {}
    for task, info in state.tasks.items():
        frame = pd.read_csv(
            run_dir / info["clips_file"], dtype={"id": str, "label": str, "group": str}, keep_default_na=False
        )
        clips[task] = [
            ClipMeta(r.id, r.label, r.group or None, float(r.duration), r.content_hash) for r in frame.itertuples()
        ]
    return cfg, clips, state


def _space(store: FeatureStore, model: str, info: dict, pooling: str) -> FeatureSpace:
    """The feature space of a model: keyed by name, weights hash, options and pooling."""
    return store.space(model, info["revision"], {**info["options"], "pooling": pooling})


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _probe_key(space: str, clips: list[ClipMeta], cfg: RunConfig) -> str:
    h = hashlib.sha256()
    cv = [cfg.repeats, cfg.cv, cfg.ungrouped, cfg.tune, dataclasses.asdict(cfg.probe_settings())]
    h.update(json.dumps([space, cfg.probes, cfg.folds, cfg.seed, cv], sort_keys=True).encode())
    for c in clips:
        h.update(f"{c.content_hash}\t{c.label}\t{c.group}\n".encode())
    return h.hexdigest()[:20]


def run_probes(cfg: RunConfig, clips_by_task: dict[str, list[ClipMeta]], state: RunState) -> pd.DataFrame:
    """Probe every (model, task); each finished pair is kept under RUN/partial/ (rows) and
    RUN/predictions/ (out-of-fold predictions) for resume."""
    from .probes import make_cv

    store = FeatureStore(cache_root(cfg.cache) / "features")
    frames = []
    for task, clips in clips_by_task.items():
        labels = [c.label for c in clips]
        has_groups = any(c.group for c in clips) and not cfg.ungrouped
        groups = [c.group or "" for c in clips] if has_groups else None
        try:
            _check_classes(task, labels, 2 if cfg.cv == "logo" else cfg.folds)
            _check_groups(task, labels, groups, cfg)
            plan = make_cv(labels, groups, cfg.folds, cfg.seed, cfg.repeats, cfg.cv)
        except ConfigError as e:  # e.g. a class lost to skipped clips: report it, probe the other tasks
            log.warning("%s", e)
            state.warnings.append(f"not probed: {e}")
            continue
        state.cv[task] = plan.describe(labels, groups)
        for model, info in state.models.items():
            frames.append(_probe_pair(cfg, store, model, info, task, clips, groups, state))
    if not frames:
        raise ConfigError("no task could be probed: " + "; ".join(state.warnings[-len(clips_by_task) :]))
    return sort_results(pd.concat(frames, ignore_index=True))


def _probe_pair(cfg, store, model, info, task, clips, groups, state) -> pd.DataFrame:
    """Rows of one (model, task): from RUN/partial/ when its rows and predictions are there, else probed."""
    from .probes import cross_validate_layers, read_predictions, write_predictions

    key = _probe_key(info["space"], clips, cfg)
    partial = cfg.out / "partial" / f"{key}.csv"
    if partial.is_file():
        stored = read_predictions(cfg.out, model, task)
        if stored is not None and stored.key == key:
            return pd.read_csv(partial)
    space = _space(store, model, info, cfg.pooling)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=store.root) as tmp:  # features memory-mapped, not in RAM
        feats = space.gather([c.content_hash for c in clips], out=Path(tmp) / "features.npy")
        result = cross_validate_layers(
            feats,
            [c.label for c in clips],
            groups,
            cfg.probes,
            cfg.folds,
            cfg.seed,
            cfg.n_jobs,
            cfg.progress,
            device=cfg.device,
            repeats=cfg.repeats,
            cv=cfg.cv,
            settings=cfg.probe_settings(),
            tune=cfg.tune,
        )
        del feats
    state.probing[f"{model}/{task}"] = {"seconds": round(time.perf_counter() - t0, 3)}
    result.predictions.ids = [c.id for c in clips]
    result.predictions.key = key
    write_predictions(cfg.out, model, task, result.predictions)
    frame = pd.DataFrame(result.rows)
    frame.insert(0, "task", task)
    frame.insert(0, "model", model)
    write_csv(partial, frame[RESULT_COLUMNS])
    return pd.read_csv(partial)


def write_outputs(
    cfg: RunConfig, results: pd.DataFrame, clips_by_task: dict[str, list[ClipMeta]], state: RunState
) -> None:
    """results.csv, summary.csv, bootstrap.csv, figures/ and manifest.json."""
    from .analysis import chance_levels, plot_layer_curves, summarize
    from .analysis.bootstrap import bootstrap_run
    from .probes import TUNE_GRIDS, probe_params

    write_csv(cfg.out / "results.csv", results)
    summary = summarize(results, {task: info["test_train_ratio"] for task, info in state.cv.items()})
    write_csv(cfg.out / "summary.csv", summary)
    t0 = time.perf_counter()
    if cfg.bootstrap:
        pairs = [(m, t) for m in state.models for t in state.cv]
        bootstrap_run(cfg.out, pairs, cfg.bootstrap, cfg.seed)
    boot = {"n_boot": cfg.bootstrap, "seconds": round(time.perf_counter() - t0, 3), "seed": cfg.seed}
    chance = {task: chance_levels([c.label for c in clips]) for task, clips in clips_by_task.items()}
    figures = plot_layer_curves(summary, cfg.out / "figures", chance={t: c["macro_f1"] for t, c in chance.items()})
    manifest = {
        "config": cfg.to_json(),
        "seed": cfg.seed,
        "versions": versions(),
        "models": state.models,
        "tasks": state.tasks,
        "chance": chance,
        "skipped": {"count": len(state.skipped), "items": [dataclasses.asdict(s) for s in state.skipped]},
        "truncated": state.truncated,
        "warnings": state.warnings,
        "extraction": state.extraction,
        "probing": state.probing,
        "cv": state.cv,
        "probe_settings": {
            "probes": probe_params(cfg.probes, cfg.seed, cfg.probe_settings()),
            "tune": {"on": cfg.tune, "grids": {p: TUNE_GRIDS[p] for p in cfg.probes if p in TUNE_GRIDS}},
        },
        "bootstrap": boot,
        "figures": [str(p.relative_to(cfg.out)) for p in figures],
    }
    write_json(cfg.out / "manifest.json", manifest)


def run(cfg: RunConfig) -> pd.DataFrame:
    """Extract, probe and write the run directory; returns the tidy results."""
    clips, state = run_extract(cfg)
    return probe_and_report(cfg, clips, state)


def probe_and_report(cfg: RunConfig, clips: dict[str, list[ClipMeta]], state: RunState) -> pd.DataFrame:
    """Probe stored features, write results, summary, figures and manifest, then analyse and report."""
    from .analysis import analyse_features, build_report, summarize_run
    from .zeroshot import restore_zeroshot_rows

    results = run_probes(cfg, clips, state)
    write_outputs(cfg, results, clips, state)
    if restore_zeroshot_rows(cfg.out) is not None:  # zero-shot rows of an earlier `speechprobe zeroshot` stay
        summarize_run(cfg.out)
    if cfg.permutations or cfg.embeddings:
        store = FeatureStore(cache_root(cfg.cache) / "features")
        analyse_features(
            cfg.out,
            lambda model, hashes: _space(store, model, state.models[model], cfg.pooling).gather(hashes),
            n_permutations=cfg.permutations,
            embeddings=cfg.embeddings,
            n_jobs=cfg.n_jobs,
            device=cfg.device,
            progress=cfg.progress,
        )
    run_layer_analyses(cfg, state)
    if cfg.report:
        build_report(cfg.out)
    return results


def run_layer_analyses(cfg: RunConfig, state: RunState) -> None:
    """Depth fingerprints, layer similarity and MDL probes as ``cfg`` asks (analysis.layer_analyses)."""
    if not (cfg.fingerprints or cfg.similarity or cfg.mdl):
        return
    from .analysis.layer_analyses import run_layer_analyses as run_all

    store = FeatureStore(cache_root(cfg.cache) / "features")

    def load(model: str, hashes):
        return _space(store, model, state.models[model], cfg.pooling).gather(list(hashes))

    run_all(
        cfg.out,
        load,
        fingerprints=cfg.fingerprints,
        similarity=cfg.similarity,
        mdl=cfg.mdl,
        device=cfg.device,
        progress=cfg.progress,
    )


def run_zeroshot_stage(cfg: ZeroShotConfig) -> pd.DataFrame:
    """Zero-shot answers into the run directory (``zeroshot.run_zeroshot``), then summary.csv over every row.

    Zero-shot and analysis are sibling stages, so the run-level summary is refreshed here, above both.
    """
    from .analysis import summarize_run
    from .zeroshot import run_zeroshot

    rows = run_zeroshot(cfg)
    summarize_run(cfg.out)
    return rows


@dataclass
class Reproduction:
    """How a rerun compares with the original run."""

    identical: bool
    rows: int
    differing_rows: int
    max_abs_diff: float
    version_changes: dict[str, tuple[str, str]]


def reproduce(run_dir: Path, out: Path) -> Reproduction:
    """Rerun ``run_dir`` from its manifest into ``out`` and compare results.csv."""
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise SpeechprobeError(f"{run_dir}: no manifest.json; is it a finished speechprobe run?")
    manifest = json.loads(path.read_text())
    cfg = RunConfig.from_json(manifest["config"], out=out)
    cfg.progress = False
    cfg.engine, cfg.ray_address, cfg.ray_actors = "local", None, None  # same features, no cluster needed
    run(cfg)
    old, new = (d / "results.csv" for d in (run_dir, out))
    if old.read_bytes() == new.read_bytes():
        diff, worst, rows = 0, 0.0, len(pd.read_csv(new))
    else:
        a, b = pd.read_csv(old), pd.read_csv(new)
        keys = [c for c in RESULT_COLUMNS if c != "value"]
        merged = a.merge(b, on=keys, how="outer", suffixes=("_old", "_new"))
        delta = (merged["value_old"] - merged["value_new"]).abs()
        diff = int((delta.fillna(float("inf")) > 0).sum())
        worst, rows = float(delta.fillna(float("inf")).max()), len(merged)
    now = versions()
    changes = {k: (v, now.get(k, "")) for k, v in manifest.get("versions", {}).items() if now.get(k) != v}
    return Reproduction(diff == 0, rows, diff, worst, changes)
