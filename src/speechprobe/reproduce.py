"""Rerun a finished run from its manifest.json and compare results.csv with the original.

Above the pipeline (it calls :func:`speechprobe.pipeline.run`); the command line's ``reproduce``. Everything
the rerun needs is checked before it starts (manifest.json, its config section key by key, the original
results.csv), so a damaged run gives one line, not a traceback after a full rerun. The rerun reads the task
sources at the resolved paths the original recorded (not relative to the working directory), and when the
results differ, :func:`speechprobe.run_inputs.changed_inputs` names the inputs that changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig
from .errors import ConfigError, SpeechprobeError
from .pipeline import run
from .run_inputs import changed_inputs, resolved_tasks
from .rundir import MANIFEST, RESULT_KEYS, RESULTS, RunDir, read_results, versions

log = logging.getLogger("speechprobe")


@dataclass
class Reproduction:
    """How a rerun compares with the original run."""

    identical: bool
    rows: int
    differing_rows: int
    max_abs_diff: float
    version_changes: dict[str, tuple[str, str]]
    changed_inputs: list[str] = field(default_factory=list)  # one line per input that differs


def rerun_config(run_dir: Path, out: Path, cache: Path | None = None) -> tuple[RunConfig, dict]:
    """The original run's configuration, aimed at ``out`` (and ``cache`` when given), and its manifest."""
    original = RunDir(run_dir)
    if not original.root.is_dir():
        raise SpeechprobeError(f"{run_dir}: no such run directory")
    manifest = original.read_manifest()
    if not manifest:
        raise SpeechprobeError(f"{run_dir}: no manifest.json; is it a finished speechprobe run?")
    if not original.path(RESULTS).is_file():
        raise SpeechprobeError(f"{original.path(RESULTS)} is missing: there is nothing to compare a rerun with")
    read_results(original.path(RESULTS))  # unreadable: one line now, not after the rerun
    cfg = RunConfig.from_recorded(manifest.get("config"), str(original.path(MANIFEST)), out=out)
    cfg.tasks = resolved_tasks(cfg.tasks, manifest)
    cfg.compute.progress = False
    cfg.compute.engine, cfg.compute.ray_address, cfg.compute.ray_actors = (
        "local",
        None,
        None,
    )  # same features, no cluster needed
    if cache is not None:
        cfg.compute.cache = Path(cache)
    return cfg, manifest


def reproduce(run_dir: Path, out: Path, cache: Path | None = None, allow_revision_change: bool = False) -> Reproduction:
    """Rerun ``run_dir`` from its manifest into ``out`` (a new directory) and compare results.csv; a dataset
    whose revision changed since the run is refused unless ``allow_revision_change``."""
    target = RunDir(out)
    if target.stages() or target.path(RESULTS).exists():
        raise ConfigError(f"{out} already holds a run; pass a new --out for the rerun")
    cfg, manifest = rerun_config(run_dir, out, cache)
    check_revisions(manifest, cfg, allow_revision_change)
    run(cfg)
    if not target.path(RESULTS).is_file():
        raise SpeechprobeError(f"the rerun in {out} wrote no results.csv")
    rep = compare_results(Path(run_dir) / RESULTS, target.path(RESULTS))
    now = versions()
    rep.version_changes = {k: (v, now.get(k, "")) for k, v in manifest.get("versions", {}).items() if now.get(k) != v}
    if not rep.identical:
        rep.changed_inputs = changed_inputs(Path(run_dir), Path(out))
    return rep


def compare_results(old: Path, new: Path) -> Reproduction:
    """Row by row: how many (model, task, layer, probe, fold, metric) rows differ, and by how much at most."""
    a, b = read_results(old), read_results(new)
    if old.read_bytes() == new.read_bytes():
        return Reproduction(True, len(b), 0, 0.0, {})
    merged = a.merge(b, on=RESULT_KEYS, how="outer", suffixes=("_old", "_new"))
    delta = (merged["value_old"] - merged["value_new"]).abs().fillna(float("inf"))
    delta[merged["value_old"].isna() & merged["value_new"].isna()] = 0.0  # NaN in both: the same
    diff = int((delta > 0).sum())
    return Reproduction(diff == 0, len(merged), diff, float(delta.max()) if len(delta) else 0.0, {})


def check_revisions(manifest: dict, cfg: RunConfig, allow: bool = False) -> list[str]:
    """The datasets whose revision (hub commit, or a local copy's commit or content hash) differs from the one
    manifest.json recorded; an error unless ``allow`` (then each is logged). Synthetic tasks are not opened."""
    from .cache import using_cache
    from .data.registry import registered_tasks
    from .data.resolve import open_task
    from .data.revision import revision_changes

    recorded = {t: info for t, info in (manifest.get("tasks") or {}).items() if (info or {}).get("revision")}
    if not recorded:
        return []
    synthetic = {n for n, t in registered_tasks().items() if t.source == "synthetic"}
    current = {}
    with using_cache(cfg.compute.cache) as root:
        for spec in (s for s in dict.fromkeys(cfg.tasks) if s not in synthetic):
            task, source = open_task(
                spec, root, columns=cfg.columns, split=cfg.split, streaming=cfg.streaming, label_map=cfg.label_map
            )
            current[task.name] = {"revision": getattr(source, "revision_record", None)}
    changes = revision_changes(recorded, current)
    if changes and not allow:
        raise ConfigError(
            f"the data changed since the run: {'; '.join(changes)}; pass --allow-revision-change to rerun anyway"
        )
    for line in changes:
        log.warning("data changed since the run: %s", line)
    return changes
