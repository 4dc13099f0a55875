"""What a task's clip list must satisfy before probing, and the facts manifest.json records about it.

After extraction each task's clips are checked once (:func:`finish_task`): clips shorter than the
run's models can take are skipped with a reason, repeated audio is kept in one group or dropped
(:mod:`speechprobe.data.duplicates`), and what remains must have two classes, each with at least
``--folds`` clips, and as many groups per class as the folds need when folds are grouped (:func:`check_folds`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence

from .config import RunConfig
from .data.duplicates import resolve_duplicates
from .data.source import ClipSource, Skip, count_kinds
from .data.tasks import Task
from .errors import ConfigError
from .features.extract import ClipMeta

log = logging.getLogger("speechprobe")


def check_folds(
    task: str, labels: Sequence[str], groups: Sequence[str | None] | None, cfg: RunConfig, noun: str = "group"
) -> None:
    """Two classes, each with clips for every fold and, when folds are grouped (``groups`` given and not
    ``--ungrouped``), with as many groups (``noun``: speakers, languages, …) as the folds need; else one line
    naming the fixes."""
    folds = 2 if cfg.cv == "logo" else cfg.folds
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
    if groups is not None and not cfg.ungrouped:
        _check_groups(task, labels, groups, cfg, noun)


def _check_groups(task: str, labels: Sequence[str], groups: Sequence[str | None], cfg: RunConfig, noun: str) -> None:
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
        f"task {task}: {len(short)} class(es) have fewer {noun}s than {want} needs "
        f"({min_groups_needed(cfg.cv, cfg.folds)}): {listed}; use {', '.join(fixes[:-1])}"
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
    grouped = has_groups and not cfg.ungrouped
    if not grouped:
        why = (
            "--ungrouped, folds are not grouped by its speaker/group column"
            if has_groups
            else ("no speaker/group column, folds are not grouped")
        )
        msg = f"task {task.name}: {why}; speaker leakage may inflate scores"
        log.warning(msg)
        warnings.append(msg)
    return final, _task_info(task, source, final, grouped, skipped, dups.as_dict()), skipped


def _task_info(task: Task, source: ClipSource, clips: list[ClipMeta], grouped: bool, skipped, dups: dict) -> dict:
    outside = dict(getattr(source, "outside_label_set", {}))
    if not outside and task.labels:
        outside = dict(Counter(c.label for c in clips if c.label not in task.labels))
    return {
        "source": task.source,
        "fingerprint": source.fingerprint(),
        "paralinguistic": task.paralinguistic,
        "cue": task.cue,
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
