"""What a task's clip list must satisfy before probing, and the facts manifest.json records about it.

After extraction each task's clips are checked once (:func:`finish_task`): clips shorter than the
run's models can take are skipped with a reason, repeated audio is kept in one group or dropped
(:mod:`speechprobe.data.duplicates`), classes with fewer clips or groups than the folds need are dropped
or merged by the ``--rare-classes`` rule (:mod:`speechprobe.probes.rare`), and at least two classes must
be left (:func:`check_folds`, also run on the source's labels before any extraction).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .config import RunConfig
from .data.duplicates import resolve_duplicates
from .data.source import ClipSource, Skip, count_kinds
from .data.tasks import Task
from .errors import ConfigError
from .features.extract import ClipMeta

if TYPE_CHECKING:
    from .probes.rare import RareClasses

log = logging.getLogger("speechprobe")


def rare_classes(labels: Sequence[str], groups: Sequence[str | None] | None, cfg: RunConfig) -> RareClasses:
    """The ``--rare-classes`` rule on a task's labels (``groups`` ignored with ``--ungrouped``)."""
    from .probes.rare import resolve_rare_classes

    grouped = groups is not None and any(groups) and not cfg.cv.ungrouped
    return resolve_rare_classes(labels, groups if grouped else None, cfg.cv.folds, cfg.cv.scheme, cfg.cv.rare_classes)


def fold_inputs(cfg: RunConfig, clips: Sequence[ClipMeta]) -> tuple[list[str], list[str] | None]:
    """A task's labels and the groups its folds keep together (None without groups or with ``--ungrouped``):
    ``make_cv(labels, groups, cfg.cv.folds, cfg.compute.seed, cfg.cv.repeats, cfg.cv.scheme)`` is its plan (the
    probes' and fine-tuning's)."""
    labels = [c.label for c in clips]
    groups = [c.group or "" for c in clips] if any(c.group for c in clips) and not cfg.cv.ungrouped else None
    return labels, groups


def check_folds(
    task: str, labels: Sequence[str], groups: Sequence[str | None] | None, cfg: RunConfig, noun: str = "group"
) -> None:
    """At least two classes left once the ``--rare-classes`` rule has dropped or merged the classes with
    fewer clips, or (grouped folds) fewer groups (``noun``: speakers, languages, …), than the folds need; else
    one line naming the fixes."""
    folds = 2 if cfg.cv.scheme == "logo" else cfg.cv.folds
    counts = Counter(labels)
    if len(counts) < 2:
        raise ConfigError(f"task {task}: only {len(counts)} class left after skipping; it needs at least 2")
    if len(rare_classes(labels, groups, cfg).kept_classes) >= 2:
        return
    small = {k: v for k, v in counts.items() if v < folds}
    if small:
        worst = min(small, key=small.get)
        raise ConfigError(
            f"task {task}: class {worst!r} has {small[worst]} clips, fewer than --folds {folds}; "
            f"lower --folds to {max(2, min(counts.values()))} or add clips"
        )
    if groups is not None and not cfg.cv.ungrouped:
        _check_groups(task, labels, groups, cfg, noun)
    raise ConfigError(f"task {task}: fewer than 2 classes left by --rare-classes {cfg.cv.rare_classes}; it needs 2")


def _check_groups(task: str, labels: Sequence[str], groups: Sequence[str | None], cfg: RunConfig, noun: str) -> None:
    """Every class needs as many groups (speakers) as the folds: else one line naming the classes and the fixes."""
    from .probes.cv import group_shortfall, min_groups_needed

    short = group_shortfall(labels, groups, cfg.cv.folds, cfg.cv.scheme)
    if not short:
        return
    listed = ", ".join(f"{c!r} {n}" for c, n in sorted(short.items(), key=lambda kv: (kv[1], kv[0])))
    fewest = min(short.values())
    fixes = ["--ungrouped (folds ignore the groups; speaker leakage may inflate scores)"]
    if cfg.cv.scheme != "logo" and fewest >= 2:
        fixes[:0] = [f"--folds {fewest}", "--cv logo (leave one group out)"]
    want = "--cv logo" if cfg.cv.scheme == "logo" else f"--folds {cfg.cv.folds}"
    raise ConfigError(
        f"task {task}: {len(short)} class(es) have fewer {noun}s than {want} needs "
        f"({min_groups_needed(cfg.cv.scheme, cfg.cv.folds)}): {listed}; use {', '.join(fixes[:-1])}"
        + (" or " if len(fixes) > 1 else "")
        + fixes[-1]
    )


def finish_task(
    task: Task, source: ClipSource, clips: list[ClipMeta], cfg: RunConfig, min_seconds: float, warnings: list[str]
) -> tuple[list[ClipMeta], dict, list[Skip]]:
    """The clips to probe, the task's manifest entry and every skip, after the checks of the module docstring."""
    skipped = list(source.skipped)
    kept = []
    for c in clips:
        if c.duration < min_seconds:
            reason = f"{c.duration * 1000:.2g} ms long, shorter than the {min_seconds * 1000:.3g} ms a model needs"
            log.warning("skipped %s in task %s: %s", c.id, task.name, reason)
            skipped.append(Skip(task.name, c.id, reason, "too_short"))
        else:
            kept.append(c)
    has_groups = any(c.group for c in kept)
    keep, groups, dups = resolve_duplicates(
        [c.content_hash for c in kept], [c.label for c in kept], [c.group for c in kept], cfg.drop_duplicates
    )
    if dups.copies:
        msg = dups.message(task.name, cfg.drop_duplicates)
        log.warning("%s", msg)
        warnings.append(msg)
    first = {}
    final = []
    for c, k, g in zip(kept, keep, groups):
        first.setdefault(c.content_hash, c.id)
        if k:
            final.append(dataclasses.replace(c, group=g))
        else:
            skipped.append(Skip(task.name, c.id, f"same audio as {first[c.content_hash]}", "duplicate"))
    if not final:
        raise ConfigError(f"task {task.name}: no usable clips (all {len(skipped)} skipped)")
    grouped = has_groups and not cfg.cv.ungrouped
    if not grouped:
        why = (
            "--ungrouped, folds are not grouped by its speaker/group column"
            if has_groups
            else ("no speaker/group column, folds are not grouped")
        )
        msg = f"task {task.name}: {why}; speaker leakage may inflate scores"
        log.warning(msg)
        warnings.append(msg)
    present = {c.label for c in final}
    final, rare = _apply_rare_classes(task.name, final, cfg, skipped, warnings)
    info = _task_info(task, source, final, grouped, skipped, dups.as_dict())
    info["rare_classes"] = rare.as_dict()
    info["absent_classes"] = [x for x in task.labels if x not in present]  # declared, no clip: not scored
    info["scored_label_set"] = sorted({c.label for c in final})
    return final, info, skipped


def _apply_rare_classes(
    task: str, clips: list[ClipMeta], cfg: RunConfig, skipped: list[Skip], warnings: list[str]
) -> tuple[list[ClipMeta], RareClasses]:
    """The clips left by the ``--rare-classes`` rule (merged ones relabelled); each dropped one a skip."""
    labels, groups = [c.label for c in clips], [c.group for c in clips]
    rare = rare_classes(labels, groups, cfg)
    if len(rare.kept_classes) < 2:  # nothing to compare: the probes report the task "not probed", the rest go on
        return clips, dataclasses.replace(rare, classes={}, keep=np.ones(len(labels), dtype=bool), labels=labels)
    if not rare.classes:
        return clips, rare
    msg = rare.message(task)
    log.warning("%s", msg)
    warnings.append(msg)
    kept = []
    for c, label, keep in zip(clips, rare.labels, rare.keep):
        if keep:
            kept.append(c if label == c.label else dataclasses.replace(c, label=label))
        else:
            skipped.append(Skip(task, c.id, rare.reason(c.label), "rare_class"))
    return kept, rare


def _task_info(task: Task, source: ClipSource, clips: list[ClipMeta], grouped: bool, skipped, dups: dict) -> dict:
    outside = dict(getattr(source, "outside_label_set", {}))
    if not outside and task.labels:
        outside = dict(Counter(c.label for c in clips if c.label not in task.labels))
    return {
        "source": task.source,
        "fingerprint": source.fingerprint(),
        "paralinguistic": task.paralinguistic,
        "dimension": task.dimension,
        "cue": task.cue,
        "label_semantics": task.label_semantics,
        "group_by": task.group_by or ("group" if task.group_column else None),
        "group_source": task.group_source(),
        "group_missing": getattr(source, "group_missing", ""),
        "revision": getattr(source, "revision_record", None),
        "label_set": list(task.labels),
        "labels": dict(sorted(Counter(c.label for c in clips).items())),
        "labels_outside_label_set": outside,
        "group_unmatched": getattr(source, "group_unmatched", 0),
        "singleton_groups": sum(not c.group for c in clips) if grouped else 0,
        "group_caveat": task.group_caveat,
        "n_clips": len(clips),
        "n_skipped": len(skipped),
        "skipped_by_kind": count_kinds(skipped),
        "audio_notes": count_kinds(list(getattr(source, "notes", []))),
        "duplicates": dups,
        "synthetic_clips_repaired": len(getattr(source, "repaired", [])),
        "grouped_folds": grouped,
        "group_name": task.group_name,
    }
