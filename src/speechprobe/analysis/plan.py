"""Plan, then execute, every registered analysis over a finished run directory.

:func:`plan` reads ``manifest.json``, ``results.csv``, ``clips/<task>.csv`` and ``analysis.json`` and
decides what still needs computing: a unit (see :mod:`.contract`) is pending for an analysis when its
fingerprint (the analysis's options, the run's folds and seed, the primary probe, the unit's clips,
labels and groups, its models' feature spaces and best layers) differs from the one recorded, or when
one of its outputs (rows in a table, a figure) is gone. Nothing is loaded for a unit with nothing
pending.

:func:`execute` loads each pending unit's features once, runs its pending analyses, replaces the
unit's rows in every table, and records the fingerprint, figures, captions, notes and sentences in
``analysis.json`` after every unit, so an interrupted run resumes where it stopped. Then each
analysis's ``finalise`` runs over its whole tables (e.g. q-values across tests), then the run-scope
analyses run (always: they read the others' tables), and every analysis hands its figures, findings
and notes to the report in ``analyses/<name>.json`` (:mod:`.outputs`). A unit that cannot be analysed
(one class left, features missing, …) is skipped with a note; the others go on.

:func:`analyse_features` is both steps in one call, and :func:`analyse` one analysis with its options.
:func:`build_report <speechprobe.report.build_report>` reads the files written; it never needs the features.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..errors import ConfigError, SpeechprobeError
from ..files import atomic_write
from ..interrupts import saved, say
from ..probes import ProbeSettings
from ..rundir import read_results
from .contract import Analysis, AnalysisSettings, Unit
from .inputs import FeatureLoader, read_clips, read_manifest, read_table, store_loader, write_table
from .outputs import AnalysisOutput, hand_off, read_outputs
from .primary import primary_best, primary_probe
from .registry import by_name, choose
from .summary import summarize

RECORD = "analysis.json"


@dataclass
class Job:
    """The pending analyses of one unit, with the fingerprint each will be recorded under."""

    task: str
    model: str | None
    analyses: list[Analysis]
    fingerprints: dict[str, str]


@dataclass
class Plan:
    """What :func:`execute` will compute, and what it needs to do it."""

    run_dir: Path
    settings: AnalysisSettings
    analyses: list[Analysis]
    jobs: list[Job]
    clips: dict[str, pd.DataFrame]
    best: pd.DataFrame
    models: dict[str, tuple[str, ...]]  # task -> models with primary-probe results
    record: dict = field(default_factory=dict)  # analysis.json's "done": analysis -> unit key -> entry
    notes: list[str] = field(default_factory=list)
    reused: int = 0


def settings_for(manifest: dict, summary: pd.DataFrame, **overrides) -> AnalysisSettings:
    """The run's settings (folds, seed and primary probe from its config), with ``overrides``."""
    config = manifest.get("config") or {}
    fields = {f.name for f in dataclasses.fields(AnalysisSettings)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown analysis setting(s): {', '.join(unknown)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    base = {
        "n_folds": int(config.get("folds") or 5),
        "seed": int(config.get("seed", 0) or 0),
        "primary_probe": primary_probe(config, summary.loc[summary["layer"].notna(), "probe"]),
        "repeats": int(config.get("repeats") or 1),
        "cue_repeats": config.get("cue_repeats"),
        "cv": str(config.get("cv") or "kfold"),
        "ungrouped": bool(config.get("ungrouped", False)),
        "probe_settings": {f.name: config[f.name] for f in dataclasses.fields(ProbeSettings) if f.name in config},
    }
    settings = AnalysisSettings(**{**base, **given})
    if settings.n_permutations < 0:
        raise ConfigError(f"n_permutations is {settings.n_permutations}; use 0 (no permutation test) or more")
    return settings


def _key(model: str | None, task: str) -> str:
    return json.dumps([model, task])


def _clips_digest(clips: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for row in clips[["content_hash", "label", "group"]].itertuples(index=False):
        h.update("\t".join(map(str, row)).encode() + b"\n")
    return h.hexdigest()


def _fingerprint(analysis: Analysis, settings: AnalysisSettings, unit: dict) -> str:
    spec = {
        "analysis": analysis.name,
        "options": dict(analysis.options(settings)),
        "folds": settings.n_folds,
        "seed": settings.seed,
        "primary_probe": settings.primary_probe,
        "cv": [settings.cv, settings.repeats, settings.ungrouped, dict(settings.probe_settings)],
        **unit,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _has_outputs(run_dir: Path, analysis: Analysis, entry: dict, tables: dict, model: str | None, task: str) -> bool:
    if any(not (run_dir / rel).is_file() for rel in entry.get("figures", [])):
        return False
    for name in analysis.tables:
        frame = tables.get(name)
        if frame is None:
            return False
        rows = frame["task"].astype(str) == task
        if analysis.scope == "model_task":
            rows &= frame["model"].astype(str) == str(model)
        if not rows.any():
            return False
    return True


def _read_tables(run_dir: Path, analyses: Sequence[Analysis]) -> dict[str, pd.DataFrame | None]:
    out: dict[str, pd.DataFrame | None] = {}
    for analysis in analyses:
        for name, columns in analysis.tables.items():
            path = run_dir / name
            try:
                out[name] = read_table(path, columns) if path.is_file() else None
            except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
                out[name] = None  # unreadable: recomputed and rewritten
    return out


def _previous(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / RECORD).read_text()).get("done", {}) or {}
    except (OSError, ValueError, AttributeError):
        return {}


def plan(
    run_dir: Path,
    settings: AnalysisSettings | None = None,
    *,
    analyses: Sequence[Analysis | str] | None = None,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    reuse: bool = True,
    **overrides,
) -> Plan:
    """What still needs computing in ``run_dir`` (see the module docstring): ``analyses`` (names or
    records; default: those a run with default settings chooses) whose settings leave them something to
    do; ``overrides`` are :class:`AnalysisSettings` fields (default: the run's config)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if not (run_dir / "results.csv").is_file():
        raise SpeechprobeError(f"{run_dir}: no results.csv; run the probes first")
    summary = summarize(read_results(run_dir / "results.csv"))
    settings = settings or settings_for(manifest, summary, **overrides)
    depths = {m: int(i["num_layers"]) for m, i in manifest.get("models", {}).items() if i.get("num_layers")}
    best = primary_best(summary, settings.primary_probe, depths)
    if analyses is None:
        analyses = [name for name, on in choose({}).items() if on]
    chosen = [a for a in by_name(analyses) if a.enabled(settings)]
    out = Plan(run_dir, settings, chosen, [], {}, best, {}, _previous(run_dir))
    task_info = manifest.get("tasks", {})
    model_names = list(models) if models is not None else sorted(set(manifest.get("models", {})) | set(best["model"]))
    task_names = list(tasks) if tasks is not None else sorted(set(task_info) | set(summary["task"]))
    tables = _read_tables(run_dir, chosen)
    for task in task_names:
        try:
            clips = read_clips(run_dir, task, task_info.get(task))
        except SpeechprobeError as e:
            out.notes.append(f"analyses skipped for {e}")
            continue
        n_classes = clips["label"].nunique()
        if n_classes < 2:
            out.notes.append(f"analyses skipped for task {task}: only {n_classes} class left")
            continue
        out.clips[task] = clips
        with_results = [m for m in model_names if ((best["model"] == m) & (best["task"] == task)).any()]
        out.notes += [
            f"analyses skipped for {m} × {task}: no {settings.primary_probe} probe results"
            for m in model_names
            if m not in with_results
        ]
        out.models[task] = tuple(with_results)
        _plan_task(out, task, manifest.get("models", {}), tables, reuse)
    whole = [a for a in chosen if a.scope == "run"]  # always run: they read the others' tables
    if whole and out.clips:
        out.jobs.append(Job("", None, whole, {a.name: _fingerprint(a, settings, {}) for a in whole}))
    return out


def _plan_task(out: Plan, task: str, spaces: dict, tables: dict, reuse: bool) -> None:
    """Append to ``out.jobs`` the pending analyses of every unit of ``task``."""
    members_of = {"task": [(None, out.models[task])], "model_task": [(m, (m,)) for m in out.models[task]]}
    digest = _clips_digest(out.clips[task])
    pending: dict[str | None, Job] = {}
    for analysis in (a for a in out.analyses if a.scope != "run"):
        for model, members in members_of[analysis.scope]:
            if not members:
                continue
            rows = out.best[(out.best["task"] == task) & out.best["model"].isin(members)]
            unit = {
                "task": task,
                "clips": digest,
                "models": {m: (spaces.get(m) or {}).get("space") for m in members},
                "best": {r.model: int(r.layer) for r in rows.itertuples(index=False)},
            }
            fp = _fingerprint(analysis, out.settings, unit)
            entry = out.record.get(analysis.name, {}).get(_key(model, task), {})
            done = entry.get("fingerprint") == fp and _has_outputs(out.run_dir, analysis, entry, tables, model, task)
            if reuse and done:
                out.reused += 1
                continue
            job = pending.setdefault(model, Job(task, model, [], {}))
            job.analyses.append(analysis)
            job.fingerprints[analysis.name] = fp
    out.jobs += list(pending.values())


def _replace(frame: pd.DataFrame | None, new: pd.DataFrame, columns: Sequence[str], model, task) -> pd.DataFrame:
    new = new.reindex(columns=list(columns))
    if frame is None or frame.empty:
        return new.reset_index(drop=True)
    mask = frame["task"].astype(str) == task
    if model is not None:
        mask &= frame["model"].astype(str) == str(model)
    kept = frame[~mask].reindex(columns=list(columns))
    parts = [part for part in (kept, new) if not part.empty]
    return pd.concat(parts, ignore_index=True) if parts else new


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("model", "task", "probe", "layer") if c in frame.columns]
    return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)


def execute(plan: Plan, load_features: FeatureLoader | None = None) -> dict:
    """Run ``plan`` (see the module docstring); returns the content of ``analysis.json``."""
    run_dir, settings = plan.run_dir, plan.settings
    loader = load_features or store_loader(run_dir)
    tables = _read_tables(run_dir, plan.analyses)
    columns = {name: cols for a in plan.analyses for name, cols in a.tables.items()}
    record = {name: dict(entries) for name, entries in plan.record.items()}
    notes, seconds = list(plan.notes), {a.name: 0.0 for a in plan.analyses}
    steps = sum(len(job.analyses) for job in plan.jobs)  # the bar moves per analysis of a unit, naming it
    names = ", ".join(a.name for a in plan.analyses)
    if plan.reused:
        say(f"resuming {run_dir}: {plan.reused} analysis steps ({names}) done before, {steps} left")
    bar = tqdm(total=steps, desc="analyses", unit="step", disable=not settings.progress)
    for job in plan.jobs:
        if not job.task:  # the run scope, last: once every unit's tables are final
            _finalise(plan.analyses, tables, columns, run_dir)
        unit = Unit(
            task=job.task,
            model=job.model,
            models=plan.models.get(job.task, ()) if job.task else tuple(sorted(set().union(*plan.models.values()))),
            clips=plan.clips.get(job.task, pd.DataFrame()),
            settings=settings,
            run_dir=run_dir,
            best=plan.best[plan.best["task"] == job.task] if job.task else plan.best,
            loader=loader,
        )
        for analysis in job.analyses:
            bar.set_postfix_str(f"{analysis.name}: {unit.name}", refresh=False)
            t0 = time.perf_counter()
            try:
                result = analysis.result(analysis.compute(unit))
            except SpeechprobeError as e:
                notes.append(f"{analysis.name} skipped for {unit.name}: {e}")
                continue
            finally:
                seconds[analysis.name] += time.perf_counter() - t0
                bar.update()
                saved(f"analyses {names}", f"analyses ({names}): {bar.n} of {steps} steps")
            for name, rows in result.tables.items():  # a run-scope analysis (no task) writes whole tables
                whole = not job.task
                tables[name] = (
                    rows if whole else _sorted(_replace(tables.get(name), rows, columns[name], job.model, job.task))
                )
                write_table(run_dir / name, tables[name], columns[name])
            figures = [str(f.path.relative_to(run_dir)) for f in result.figures]
            record.setdefault(analysis.name, {})[_key(job.model, job.task)] = {
                "fingerprint": job.fingerprints[analysis.name],
                "figures": figures,
                "captions": {path: f.caption for path, f in zip(figures, result.figures)},
                **({"notes": result.notes} if result.notes else {}),
                **({"findings": result.findings} if result.findings else {}),
            }
            notes += result.notes
            _write_record(run_dir, settings, notes, record, seconds)
        unit.release()
    bar.close()
    if all(job.task for job in plan.jobs):
        _finalise(plan.analyses, tables, columns, run_dir)
    info = _write_record(run_dir, settings, notes, record, seconds)
    for analysis in plan.analyses:
        hand_off(run_dir, analysis, info, dict(analysis.options(settings)))
    return info


def _finalise(analyses: Sequence[Analysis], tables: dict, columns: dict, run_dir: Path) -> None:
    """Each analysis's ``finalise`` over its whole tables (e.g. q-values across tests)."""
    for analysis in analyses:
        own = {n: tables[n] for n in analysis.tables if tables.get(n) is not None}
        for name, frame in (analysis.finalise(own) if analysis.finalise and own else {}).items():
            tables[name] = frame
            write_table(run_dir / name, frame, columns[name])


def _write_record(run_dir: Path, settings: AnalysisSettings, notes, record: dict, seconds: dict) -> dict:
    entries = [e for per_unit in record.values() for e in per_unit.values()]
    captions = {path: text for e in entries for path, text in e.get("captions", {}).items()}
    shown = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("progress", "n_jobs")}
    info = {
        **shown,
        "notes": list(dict.fromkeys(notes)),
        "figures": sorted(p for p in captions if (run_dir / p).is_file()),
        "captions": captions,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "done": record,
    }
    atomic_write(run_dir / RECORD, lambda fh: fh.write((json.dumps(info, indent=2) + "\n").encode()))
    return info


def analyse_features(
    run_dir: Path,
    load_features: FeatureLoader | None = None,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    reuse: bool = True,
    analyses: Sequence[Analysis | str] | None = None,
    **settings,
) -> dict:
    """:func:`plan` then :func:`execute`: the ``analyses`` of a finished run (names or records; default:
    those a run with default settings runs) not already done with the same settings. ``settings`` are
    :class:`AnalysisSettings` fields (``n_permutations``, ``embeddings``, ``primary_probe``, ``n_folds``,
    ``seed``, ``max_points``, ``n_jobs``, ``device``, ``progress``, ``options``); folds, seed and primary
    probe default to the run's. Returns the content of ``analysis.json``."""
    todo = plan(run_dir, analyses=analyses, models=models, tasks=tasks, reuse=reuse, **settings)
    return execute(todo, load_features)


def analyse(
    run_dir: Path, name: str, load_features: FeatureLoader | None = None, *, reuse: bool = True, **options
) -> AnalysisOutput:
    """The analysis ``name`` alone on a finished run, with its ``options`` (e.g. ``analyse(run, "mdl",
    n_orders=3)``); ``load_features(model, hashes)`` defaults to the run's feature store. Returns what it
    handed to the report (``analyses/<name>.json``)."""
    analyse_features(run_dir, load_features, analyses=[name], reuse=reuse, options={name: options})
    return next(out for out in read_outputs(run_dir)[0] if out.analysis == name)
