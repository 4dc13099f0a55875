"""Rerun a finished run from its manifest.json and compare results.csv with the original.

Above the pipeline (it calls :func:`speechprobe.pipeline.run`); the command line's ``reproduce``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import RunConfig
from .errors import ConfigError, SpeechprobeError
from .pipeline import run
from .rundir import RESULT_COLUMNS, RunDir, read_results, versions

log = logging.getLogger("speechprobe")


@dataclass
class Reproduction:
    """How a rerun compares with the original run."""

    identical: bool
    rows: int
    differing_rows: int
    max_abs_diff: float
    version_changes: dict[str, tuple[str, str]]


def reproduce(run_dir: Path, out: Path, allow_revision_change: bool = False) -> Reproduction:
    """Rerun ``run_dir`` from its manifest into ``out`` (a new directory) and compare results.csv; a dataset
    whose revision changed since the run is refused unless ``allow_revision_change``."""
    manifest = RunDir(run_dir).read_manifest()
    if not manifest:
        raise SpeechprobeError(f"{run_dir}: no manifest.json; is it a finished speechprobe run?")
    target = RunDir(out)
    if target.stages() or target.path("results.csv").exists():
        raise ConfigError(f"{out} already holds a run; pass a new --out for the rerun")
    cfg = RunConfig.from_json(manifest["config"], out=out)
    cfg.progress = False
    cfg.engine, cfg.ray_address, cfg.ray_actors = "local", None, None  # same features, no cluster needed
    check_revisions(manifest, cfg, allow_revision_change)
    run(cfg)
    old, new = (d / "results.csv" for d in (Path(run_dir), Path(out)))
    if old.read_bytes() == new.read_bytes():
        diff, worst, rows = 0, 0.0, len(pd.read_csv(new))
    else:
        a, b = read_results(old), read_results(new)
        keys = [c for c in RESULT_COLUMNS if c != "value"]
        merged = a.merge(b, on=keys, how="outer", suffixes=("_old", "_new"))
        delta = (merged["value_old"] - merged["value_new"]).abs()
        diff = int((delta.fillna(float("inf")) > 0).sum())
        worst, rows = float(delta.fillna(float("inf")).max()), len(merged)
    now = versions()
    changes = {k: (v, now.get(k, "")) for k, v in manifest.get("versions", {}).items() if now.get(k) != v}
    return Reproduction(diff == 0, rows, diff, worst, changes)


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
    with using_cache(cfg.cache) as root:
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
