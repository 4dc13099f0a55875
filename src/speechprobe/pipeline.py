"""The end-to-end pipeline: tasks -> extraction -> probes -> run directory.

Stages write what they finish into the run directory as they go (clip lists, per (model, task)
probe results), and the feature store keeps every extracted clip, so a rerun of the same
command resumes where an interrupted one stopped. The run directory has one owner,
:class:`~speechprobe.rundir.RunDir`: each stage claims it with the fingerprint of its settings
first, so a different configuration is refused instead of mixed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

from .cache import cache_root, using_cache
from .clip_checks import check_folds, finish_task, fold_inputs
from .config import RunConfig
from .csvsafe import read_csv
from .cue_stage import CUE_OPTIONS, copy_items, cue_options, cue_targets, record_extraction, wants_cues
from .data.resolve import open_task
from .data.source import ClipSource, Skip, count_kinds
from .data.tasks import Task
from .errors import ConfigError, SpeechprobeError
from .features.engine import LocalEngine
from .features.extract import ClipMeta, extract
from .features.store import FeatureSpace, FeatureStore
from .interrupts import saved, say
from .models.base import RANDOM_SUFFIX
from .models.registry import family, installed, load_model, resolve_model
from .pooling_stage import POOLING_OPTIONS, pooling_spaces, variant_options
from .run_inputs import task_input
from .rundir import RESULT_COLUMNS, STATE, RunDir, sort_results, versions
from .warnlog import capture_warnings

if TYPE_CHECKING:
    from .zeroshot import ZeroShotConfig

log = logging.getLogger("speechprobe")
PROBE_KEY_VERSION = 2
# Probe-stage settings that change no probe row (the partial results are reused across them).
ANALYSIS_ONLY = ("permutations", "embeddings", "primary_probe", "bootstrap", "fingerprints", "similarity", "mdl")
ANALYSIS_ONLY += ("analyses", *CUE_OPTIONS, *POOLING_OPTIONS)


@dataclass
class TaskRecord:
    """What the run knows about one task after extraction."""

    task: Task
    source: ClipSource
    clips: list[ClipMeta] = field(default_factory=list)
    input: dict[str, str] = field(default_factory=dict)  # the --tasks entry, resolved and hashed (run_inputs)


@dataclass
class RunState:
    """Accumulated facts for manifest.json."""

    models: dict[str, dict] = field(default_factory=dict)  # name -> adapter info + space
    tasks: dict[str, dict] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[Skip] = field(default_factory=list)  # clips used with a caveat (cut, short data)
    truncated: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extraction: dict[str, dict] = field(default_factory=dict)
    probing: dict[str, dict] = field(default_factory=dict)  # wall seconds per (model, task) probed in this call
    store: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> feature items found bad and recomputed
    library_warnings: dict = field(default_factory=dict)  # captured during extraction (warnlog)
    targets: dict[str, dict] = field(default_factory=dict)  # analysis targets extracted like a model (acoustic cues)
    cv: dict[str, dict] = field(default_factory=dict)  # per task: fold plan and per-fold class coverage


def validate(cfg: RunConfig) -> None:
    """Every option, before any work: the configuration's own checks and the probe names."""
    from .probes.registry import probe_names

    unknown = [p for p in cfg.probes if p not in probe_names()]  # first: the primary probe is checked against them
    if unknown:
        raise ConfigError(f"--probes {','.join(unknown)}: choose from {', '.join(probe_names())}")
    if cfg.analyses.chosen:  # --analyses: its edits set the analyses' flags (so extraction knows about the cues)
        from .analysis.registry import settle

        settle(cfg.analyses)
    cfg.validate()


def _model_list(cfg: RunConfig) -> list[str]:
    return list(dict.fromkeys([*cfg.models, *cfg.baselines]))


def _weights(name: str, cfg: RunConfig) -> tuple[str, bool]:
    """The model to load and whether its weights are random: ``--random-init`` randomises every model;
    ``<model>+random`` in --models adds the random-init control beside its trained twin in one run; a model
    whose optional package is missing (``egemaps`` without openSMILE) stops the run before any work."""
    base = name.removesuffix(RANDOM_SUFFIX)
    spec, _ = resolve_model(base, convert=False)
    if base != name and not family(spec.family).has_weights:
        raise ConfigError(f"--models {name}: {base} is a fixed recipe with no weights to randomise")
    if not installed(spec):
        raise ConfigError(f"{base} needs the {spec.requires} package, not installed here: pip install {spec.requires}")
    return base, cfg.random_init or base != name


def open_tasks(cfg: RunConfig, root: Path) -> list[TaskRecord]:
    """Open every task and check its class sizes before any extraction (fine-tuning reopens them to read audio)."""
    specs = list(dict.fromkeys(cfg.tasks))
    records = [
        TaskRecord(
            *open_task(
                t,
                root,
                cfg.compute.seed,
                cfg.n_per_class,
                cfg.compute.progress,
                columns=cfg.columns,
                split=cfg.split,
                streaming=cfg.streaming,
                max_seconds=cfg.max_clip_seconds,
                group_by=cfg.group_by,
                label_map=cfg.label_map,
            )
        )
        for t in specs
    ]
    seen: set[str] = set()
    for rec, spec in zip(records, specs):
        if rec.task.name in seen:  # two tasks of one name (e.g. two folders of tones.csv): the later by its folder
            rec.task = dataclasses.replace(rec.task, name=f"{rec.task.name}@{Path(spec).parent.name or spec}")
            rec.source.task = rec.task.name
        seen.add(rec.task.name)
        rec.input = task_input(spec)
    for rec in records:
        labels = getattr(rec.source, "labels", None)
        if labels is not None:
            groups = getattr(rec.source, "groups", None)
            noun = cfg.cv.group_name or rec.task.group_name or "group"
            check_folds(rec.task.name, labels(), groups() if groups is not None else None, cfg, noun)
    return records


def run_extract(cfg: RunConfig, existing: str = "auto") -> tuple[dict[str, list[ClipMeta]], RunState]:
    """Extract every (model, task) into the feature store; record clips and state in RUN/.

    ``existing`` says what to do with a run directory that already holds a run: ``auto`` resumes
    the same settings and refuses others, ``resume`` also adopts files of a run without settings,
    ``overwrite`` removes them first (see :class:`~speechprobe.rundir.RunDir`).
    """
    validate(cfg)
    with RunDir(cfg.out).lock():
        return _extract(cfg, existing)


def _extract(cfg: RunConfig, existing: str) -> tuple[dict[str, list[ClipMeta]], RunState]:
    """:func:`run_extract` once the configuration is valid."""
    for name in _model_list(cfg):
        _weights(name, cfg)  # unknown names fail before any work
    run_dir = RunDir(cfg.out)
    outcome = run_dir.claim("extract", cfg.stage_config("extract"), existing)
    with using_cache(cfg.compute.cache) as root, capture_warnings() as wlog:
        mark = wlog.mark()
        records = open_tasks(cfg, root)
        state = RunState()
        min_seconds = _extract_models(cfg, records, state, FeatureStore(root / "features"))
        if outcome == "resumed":
            reused = sum(e["reused"] for e in state.extraction.values())
            total = reused + sum(e["computed"] for e in state.extraction.values())
            say(f"resuming {cfg.out}: {reused} of {total} clip features were cached")
        finished = [finish_task(rec.task, rec.source, rec.clips, cfg, min_seconds, state.warnings) for rec in records]
        state.library_warnings = wlog.as_json(since=mark)
    for rec, (clips, info, skipped) in zip(records, finished):  # every task checked before any file is written
        rec.clips = clips
        state.skipped.extend(skipped)
        state.notes.extend(getattr(rec.source, "notes", []))
        info["clips_file"] = run_dir.clips_file(rec.task.name)
        info["input"] = rec.input
        state.tasks[rec.task.name] = info
    for rec in records:
        run_dir.write_csv(state.tasks[rec.task.name]["clips_file"], pd.DataFrame(map(dataclasses.asdict, rec.clips)))
    run_dir.write_json(STATE, {"config": cfg.to_json(), **dataclasses.asdict(state)})
    return {rec.task.name: rec.clips for rec in records}, state


def _extract_models(cfg: RunConfig, records: list[TaskRecord], state: RunState, store: FeatureStore) -> float:
    """Extract each model, then the analysis targets, over every task; the shortest clip every model takes (s)."""
    budget = cfg.batch_seconds
    min_seconds = 0.0
    for name in _model_list(cfg):
        base, random_init = _weights(name, cfg)
        c = cfg.compute
        recipe = dict(name=base, window=c.window, device=c.device, dtype=c.dtype, random_init=random_init, seed=c.seed)
        if cfg.compute.engine == "ray":  # model actors on a Ray cluster
            from .features.ray_engine import RayEngine

            engine = RayEngine(recipe, address=cfg.compute.ray_address, num_actors=cfg.compute.ray_actors)
        else:  # this process; the engine keeps its out-of-memory state across tasks
            engine = LocalEngine(load_model(**recipe))
        options = engine.options()
        if options.get("unmasked_padding"):  # features depend on how much a batch pads each clip
            options["max_batch_seconds"] = budget
        state.models[engine.name] = {**dataclasses.asdict(engine.info), "options": options}
        # A clip shorter than half of one output frame gives the model no real frame to pool.
        min_seconds = max(min_seconds, 0.5 / float(engine.info.frame_rate))
        _extract_tasks(cfg, engine, state.models[engine.name], records, state, store)
        del engine
    for engine, entry, twin in cue_targets(cfg, state, store):  # the cue analyses' targets, never probed
        _extract_tasks(cfg, engine, entry, records, state, store, twin)
    return min_seconds


def _extract_tasks(cfg, engine, entry, records, state, store, twin=None) -> None:
    """A model or target (``entry``: its manifest record) over every task; items that ``twin`` holds are copied."""
    entry["space"] = (space := _space(store, engine.name, entry, cfg.pooling)).root.name
    spaces = pooling_spaces(cfg, engine, entry, store, space)  # with --pooling-variants: more from one forward
    units = (len(_model_list(cfg)) + wants_cues(cfg)) * len(records)
    for rec in records:
        t0, key = time.perf_counter(), f"{engine.name}/{rec.task.name}"
        copy_items(twin, space, [c.content_hash for c in rec.clips])
        report = extract(engine, rec.source, spaces, cfg.pooling, cfg.batch_seconds, cfg.compute.progress, key)
        record_extraction(state.extraction, key, report, t0, cfg.batch_seconds)
        saved("extract", f"the features of {len(state.extraction)} of {units} (model, task) pairs")
        if report.truncated:
            state.truncated[key] = report.truncated
        rec.clips = rec.clips or report.clips
        if [c.content_hash for c in rec.clips] != [c.content_hash for c in report.clips]:
            raise SpeechprobeError(f"task {rec.task.name}: the source changed between models; rerun")
    if space.repaired:
        state.store[engine.name] = dict(space.repaired)
    engine.close()  # stops a Ray engine's actors (frees their GPUs for the next model)


def load_extracted(run_dir: Path) -> tuple[RunConfig, dict[str, list[ClipMeta]], RunState]:
    """Read back what ``run_extract`` recorded in a run directory."""
    rd = RunDir(run_dir)
    if not rd.path(STATE).is_file():
        raise SpeechprobeError(f"{run_dir}: no state.json; run `speechprobe extract ... --out {run_dir}` first")
    saved = rd.read_json(STATE)
    cfg = RunConfig.from_json(saved.pop("config"), out=run_dir)
    fields = {f.name for f in dataclasses.fields(RunState)}
    state = RunState(**{k: v for k, v in saved.items() if k in fields and k not in ("skipped", "notes")})
    state.skipped = [Skip(**s) for s in saved.get("skipped", [])]
    state.notes = [Skip(**s) for s in saved.get("notes", [])]
    clips = {}
    for task, info in state.tasks.items():
        frame = read_csv(
            rd.path(info["clips_file"]), dtype={"id": str, "label": str, "group": str}, keep_default_na=False
        )
        clips[task] = [
            ClipMeta(r.id, r.label, r.group or None, float(r.duration), r.content_hash) for r in frame.itertuples()
        ]
    return cfg, clips, state


def _space(store: FeatureStore, model: str, info: dict, pooling: str) -> FeatureSpace:
    """The feature space of a model: keyed by name, weights hash, options and pooling."""
    if "root" in info:  # decoder states, opened where the zero-shot stage stored them (decoder_stage)
        return FeatureSpace(info["root"], {})
    return store.space(model, info["revision"], {**info["options"], "pooling": pooling})


def probe_key(task: str, label_set: list[str], space: str, clips: list[ClipMeta], cfg: RunConfig) -> str:
    """The partial-results key: the task's identity (name, label set, every clip's id, content, label
    and group), the feature space, and the probe settings and seed."""
    settings = {k: v for k, v in cfg.stage_config("probe").items() if k not in ANALYSIS_ONLY}
    h = hashlib.sha256()
    h.update(json.dumps([PROBE_KEY_VERSION, task, sorted(label_set), space, settings], sort_keys=True).encode())
    for c in clips:
        h.update(f"{c.id}\t{c.content_hash}\t{c.label}\t{c.group}\n".encode())
    return h.hexdigest()[:24]


def run_probes(
    cfg: RunConfig, clips_by_task: dict[str, list[ClipMeta]], state: RunState, run_dir: RunDir | None = None
) -> pd.DataFrame:
    """Probe every (model, task); each finished pair is kept under RUN/partial/ (rows) and
    RUN/predictions/ (out-of-fold predictions) for resume."""
    from .analysis.units import plan_facts
    from .probes import make_cv

    run_dir = run_dir or RunDir(cfg.out)
    store = FeatureStore(cache_root(cfg.compute.cache) / "features")
    frames, pairs = [], []
    for task, clips in clips_by_task.items():
        labels, groups = fold_inputs(cfg, clips)
        noun = cfg.cv.group_name or state.tasks.get(task, {}).get("group_name") or "group"
        try:
            check_folds(task, labels, groups, cfg, noun)
            plan = make_cv(labels, groups, cfg.cv.folds, cfg.compute.seed, cfg.cv.repeats, cfg.cv.scheme)
        except ConfigError as e:  # e.g. a class lost to skipped clips: report it, probe the other tasks
            log.warning("%s", e)
            state.warnings.append(f"not probed: {e}")
            continue
        state.cv[task] = plan_facts(plan.describe(labels, groups), labels, groups, noun)
        log.info("task %s: %s; %s", task, state.cv[task]["plan"], state.cv[task]["unit_text"])
        label_set = state.tasks.get(task, {}).get("label_set") or sorted(set(labels))
        pairs += [
            (model, info, task, clips, groups, probe_key(task, label_set, info["space"], clips, cfg))
            for model, info in state.models.items()
        ]
    done = sum(run_dir.partial_file(p[-1]).is_file() for p in pairs)
    if done:
        say(f"resuming {cfg.out}: probes of {done} of {len(pairs)} (model, task) pairs done, {len(pairs) - done} left")
    for model, info, task, clips, groups, key in pairs:
        frames.append(_probe_pair(cfg, run_dir, store, model, info, task, clips, groups, key, state))
        saved("probe", f"probe results of {len(frames)} of {len(pairs)} (model, task) pairs")
    if not frames:
        raise ConfigError("no task could be probed: " + "; ".join(state.warnings[-len(clips_by_task) :]))
    return sort_results(pd.concat(frames, ignore_index=True))


def _probe_pair(cfg, run_dir, store, model, info, task, clips, groups, key, state) -> pd.DataFrame:
    """Rows of one (model, task): from RUN/partial/ when its rows and predictions are there, else probed."""
    from .probes import cross_validate_layers, read_predictions, write_predictions

    partial = run_dir.partial_file(key)
    if partial.is_file():
        stored = read_predictions(cfg.out, model, task)
        if stored is not None and stored.key == key:
            return read_csv(partial)
    space = _space(store, model, info, cfg.pooling)
    t0 = time.perf_counter()
    with run_dir.temp_dir() as tmp:  # features memory-mapped, not in RAM; never inside the store
        feats = space.gather([c.content_hash for c in clips], out=tmp / "features.npy")
        result = cross_validate_layers(
            feats,
            [c.label for c in clips],
            groups,
            cfg.probes,
            cfg.cv.folds,
            cfg.compute.seed,
            cfg.n_jobs,
            cfg.compute.progress,
            device=cfg.compute.device,
            repeats=cfg.cv.repeats,
            cv=cfg.cv.scheme,
            settings=cfg.probe,
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
    run_dir.write_csv(str(partial.relative_to(run_dir.root)), frame[RESULT_COLUMNS])
    return read_csv(partial)


def write_outputs(
    cfg: RunConfig,
    results: pd.DataFrame,
    clips_by_task: dict[str, list[ClipMeta]],
    state: RunState,
    library_warnings: dict | None = None,
) -> None:
    """results.csv (this stage's rows replaced, zero-shot rows kept), summary.csv, bootstrap.csv, figures/ and
    manifest.json."""
    from .analysis import chance_levels, primary_probe, summarize
    from .analysis.bootstrap import bootstrap_run
    from .figures import curves
    from .probes import probe_params, probe_spec
    from .zeroshot.decoder_states import warn_dropped

    run_dir = RunDir(cfg.out)
    bar = tqdm(total=3, desc="summary, bootstrap, figures", unit="step", leave=False, disable=not cfg.compute.progress)
    warn_dropped(run_dir, set(results["model"]))  # the decoder states the zero-shot stage probed: say so
    merged = run_dir.replace_rows("probe", results)
    summary = summarize(merged, {task: info["test_train_ratio"] for task, info in state.cv.items()})
    run_dir.write_csv("summary.csv", summary)
    bar.update()
    t0 = time.perf_counter()
    if cfg.cv.bootstrap:
        pairs = [(m, t) for m in state.models for t in state.cv]
        nouns = {t: info.get("group_name") or "group" for t, info in state.cv.items()}
        bootstrap_run(cfg.out, pairs, cfg.cv.bootstrap, cfg.compute.seed, nouns)
    boot = {"n_boot": cfg.cv.bootstrap, "seconds": round(time.perf_counter() - t0, 3), "seed": cfg.compute.seed}
    bar.update()
    chance = {task: chance_levels([c.label for c in clips]) for task, clips in clips_by_task.items()}
    primary = primary_probe(cfg.to_json(), summary.loc[summary["layer"].notna(), "probe"])
    depth = {m: int(info["num_layers"]) for m, info in state.models.items()}  # the report draws them interactively
    specs = curves.task_specs(summary, depth, primary, {t: c["macro_f1"] for t, c in chance.items()})
    figures = list(curves.draw_tasks(cfg.out, specs).values())
    bar.update()
    bar.close()
    notes = [dataclasses.asdict(s) for s in state.notes]
    repaired = sum(n for counts in state.store.values() for n in counts.values())
    sections = {
        "config": cfg.to_json(),
        "seed": cfg.compute.seed,
        "versions": versions(),
        "models": state.models,
        "targets": state.targets,
        "tasks": state.tasks,
        "chance": chance,
        "skipped": {
            "count": len(state.skipped),
            "by_kind": count_kinds(state.skipped),
            "items": [dataclasses.asdict(s) for s in state.skipped],
        },
        "audio_notes": {"count": len(notes), "by_kind": count_kinds(state.notes), "items": notes},
        "truncated": state.truncated,
        "warnings": state.warnings,
        "extraction": state.extraction,
        "probing": state.probing,
        "store": {"items_recomputed": repaired, "by_model": state.store},
        "library_warnings": {"extract": state.library_warnings, "probe": library_warnings or {}},
        "cv": state.cv,
        "probe_settings": {
            "probes": probe_params(cfg.probes, cfg.compute.seed, cfg.probe),
            "tune": {"on": cfg.tune, "grids": {p: dict(probe_spec(p).grid) for p in cfg.probes if probe_spec(p).grid}},
        },
        "bootstrap": boot,
        "figures": [str(p.relative_to(cfg.out)) for p in figures],
    }
    run_dir.update_manifest(sections)


def run(cfg: RunConfig, existing: str = "auto") -> pd.DataFrame:
    """Extract, probe and write the run directory; returns the tidy results (``existing``: see run_extract)."""
    validate(cfg)
    with RunDir(cfg.out).lock():  # one writer for the whole run
        _claim_probe(cfg, existing)  # refuse before extracting anything
        clips, state = _extract(cfg, existing)
        return _probe_and_report(cfg, clips, state, existing)


def _claim_probe(cfg: RunConfig, existing: str) -> RunDir:
    """Claim the probe stage, once every analysis has declared the tables it writes (so that they go too)."""
    from .analysis.registry import registered

    registered()
    run_dir = RunDir(cfg.out)
    run_dir.claim("probe", cfg.stage_config("probe"), existing)
    return run_dir


def probe_and_report(
    cfg: RunConfig, clips: dict[str, list[ClipMeta]], state: RunState, existing: str = "auto"
) -> pd.DataFrame:
    """Probe stored features, write results, summary, figures and manifest, then analyse and report."""
    validate(cfg)
    with RunDir(cfg.out).lock():
        return _probe_and_report(cfg, clips, state, existing)


def _probe_and_report(cfg: RunConfig, clips: dict[str, list[ClipMeta]], state: RunState, existing: str) -> pd.DataFrame:
    """:func:`probe_and_report` once the configuration is valid."""
    from .analysis import analyse_features
    from .analysis.registry import settle
    from .analysis.replay import replay_options
    from .report import build_report
    from .zeroshot.compare import refresh_zeroshot_tables

    run_dir = _claim_probe(cfg, existing)
    with using_cache(cfg.compute.cache), capture_warnings() as wlog:
        mark = wlog.mark()
        results = run_probes(cfg, clips, state, run_dir)
        write_outputs(cfg, results, clips, state, wlog.as_json(since=mark))
        if run_dir.has_rows("zeroshot"):  # rows of an earlier `speechprobe zeroshot`: refresh their comparison
            refresh_zeroshot_tables(run_dir)
        analyses, options = cue_options(settle(on := cfg.analyses), state.targets)
        options |= variant_options(state.models) | replay_options(on)  # pooling variants' spaces; clip replays
        if analyses:  # one pass over the chosen analyses, in dependency order
            c = cfg.compute
            kw = dict(n_permutations=on.permutations, embeddings=on.embeddings, device=c.device, progress=c.progress)
            analyse_features(cfg.out, _loader(cfg, state), analyses=analyses, n_jobs=cfg.n_jobs, options=options, **kw)
        if cfg.analyses.report:
            build_report(cfg.out, progress=cfg.compute.progress)
    return results


def _loader(cfg: RunConfig, state: RunState):
    """``load(model, hashes)``: the run's stored features of a model or analysis target (the acoustic cues)."""
    store, spaces = FeatureStore(cache_root(cfg.compute.cache) / "features"), {**state.targets, **state.models}
    return lambda model, hashes: _space(store, model, spaces[model], cfg.pooling).gather(list(hashes))


def run_zeroshot_stage(cfg: ZeroShotConfig, existing: str = "auto") -> pd.DataFrame:
    """Zero-shot answers into the run directory (``zeroshot.run_zeroshot``), then summary.csv over every row.

    Zero-shot and analysis are sibling stages, so the run-level summary is refreshed here, above both.
    """
    from .analysis import summarize_run
    from .zeroshot import run_zeroshot

    cfg.validate()  # before the lock creates --out
    with RunDir(cfg.out).lock():
        rows = run_zeroshot(cfg, existing)
        summarize_run(cfg.out)  # with --decoder-states: decoder_stage.zeroshot_with_decoder_models goes on
    return rows
