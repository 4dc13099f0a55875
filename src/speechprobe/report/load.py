"""Loading a run directory for the report: :class:`RunData` and :func:`load_run`, read leniently.

The report works from the files in the run directory alone: ``results.csv`` (fold-level scores;
``summary.csv`` when only it is left), ``manifest.json`` (config, versions, models, tasks, chance levels,
skipped items, warnings), optionally ``permutation.csv``, ``chance.csv``, ``analysis.json``,
``bootstrap.csv``, the zero-shot tables and ``analyses/*.json`` of the feature-level analyses. Anything
missing or unreadable becomes a line in ``RunData.problems`` (shown in the report's "Missing or partial
data" box) instead of an error, so whatever can be computed is still rendered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.inputs import read_table
from ..analysis.outputs import AnalysisOutput, read_outputs
from ..analysis.primary import primary_probe
from ..analysis.selection import CHANCE_COLUMNS, PERMUTATION_COLUMNS, UNIT_COLUMNS
from ..analysis.summary import SUMMARY_COLUMNS, chance_levels, fold_size_ratios, read_results, summarize
from ..analysis.units import fold_plan_text, unit_from_manifest, withheld
from ..csvsafe import read_csv
from ..errors import SpeechprobeError
from ..models.registry import default_baselines
from ..probes.metrics import out_of_range

# The columns the report reads from the zero-shot tables (written by speechprobe.zeroshot.link).
ZS_DIAG_COLUMNS = ["model", "task", "mode", "prompt", "macro_f1", "parse_rate", "top_share", "collapsed"]
ZS_CORR_COLUMNS = ["scope", "selection", "method", "r", "ci_low", "ci_high", "n_pairs", "n_collapsed"]


@dataclass
class RunData:
    """What a run directory holds, read leniently: problems are collected, not raised."""

    run_dir: Path
    manifest: dict = field(default_factory=dict)
    results: pd.DataFrame | None = None
    summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUMMARY_COLUMNS))
    permutation: pd.DataFrame | None = None
    chance: pd.DataFrame | None = None
    bootstrap: pd.DataFrame | None = None
    zeroshot_diagnostics: pd.DataFrame | None = None  # zeroshot_diagnostics.csv (parse rate, collapse)
    zeroshot_correlation: pd.DataFrame | None = None  # zeroshot_correlation.csv
    analysis: dict = field(default_factory=dict)
    outputs: list[AnalysisOutput] = field(default_factory=list)  # RUN/analyses/*.json (feature-level analyses)
    problems: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict:
        return self.manifest.get("config") or {}

    @property
    def fold_plan(self) -> str:
        """The cross-validation plan in words, from manifest.json's ``cv`` (the plan each task really had:
        "leave-one-language-out cross-validation (2 folds, one per language)"; tasks with different plans are
        named); runs without it: ``"5 folds"`` or ``"5 × 5 folds (5 repeats)"`` from the config; "" if unknown."""
        cv = self.manifest.get("cv") or {}
        texts = {t: (i.get("plan") or fold_plan_text(i)) for t, i in cv.items() if isinstance(i, dict)}
        texts = {t: x for t, x in texts.items() if x}
        distinct = list(dict.fromkeys(texts.values()))
        if len(distinct) == 1:
            return distinct[0]
        if distinct:
            return "; ".join(f"{x} for {', '.join(t for t in texts if texts[t] == x)}" for x in distinct)
        folds, repeats = self.config.get("folds"), int(self.config.get("repeats") or 1)
        if not folds:
            return ""
        return f"{folds} folds" if repeats == 1 else f"{repeats} × {folds} folds ({repeats} repeats)"

    def unit(self, task: str) -> dict:
        """The task's unit of inference (manifest.json ``cv[task].unit``; empty for older runs)."""
        return unit_from_manifest(self.manifest, task)

    def withheld(self, what: str) -> dict[str, str]:
        """Task -> why ``what`` is not computed there (too few units per class; :mod:`..analysis.units`)."""
        return withheld(self.manifest, what)

    @property
    def tasks_meta(self) -> dict:
        return self.manifest.get("tasks") or {}

    @property
    def ratios(self) -> dict[str, float]:
        """n_test / n_train per task (the corrected resampled t), from manifest.json's ``cv``."""
        return fold_size_ratios(self.manifest)

    @property
    def depths(self) -> dict[str, int]:
        out = {}
        for model, info in (self.manifest.get("models") or {}).items():
            try:
                out[model] = int(info.get("num_layers"))
            except (TypeError, ValueError, AttributeError):
                pass
        return out

    @property
    def primary(self) -> str:
        """The probe whose best layer is "the best layer" (:func:`.primary.primary_probe`)."""
        return primary_probe(self.config, self.summary.loc[self.summary["layer"].notna(), "probe"])

    @property
    def baselines(self) -> list[str]:
        names = self.config.get("baselines")
        return list(dict.fromkeys([*(names if isinstance(names, list) else []), *default_baselines()]))


def _read_summary_csv(path: Path) -> pd.DataFrame:
    frame = read_csv(path, keep_default_na=True)
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    if missing:
        raise SpeechprobeError(f"summary.csv lacks column(s): {', '.join(missing)}")
    for col in ("model", "task", "probe", "metric"):
        frame[col] = frame[col].astype(str)
    frame["layer"] = pd.to_numeric(frame["layer"], errors="coerce").round().astype("Int64")
    return frame[SUMMARY_COLUMNS]


def load_run(run_dir: Path) -> RunData:
    """Read a run directory; anything missing or unreadable becomes a line in ``problems``."""
    run_dir = Path(run_dir)
    data = RunData(run_dir)
    if not run_dir.is_dir():
        data.problems.append(f"the run directory {run_dir} does not exist")
        return data
    _read_manifest(data, run_dir)
    _read_scores(data, run_dir)
    _read_analysis(data, run_dir)
    data.bootstrap = _read_bootstrap(run_dir, data.problems)
    data.outputs, problems = read_outputs(run_dir)
    data.problems.extend(problems)
    data.problems.extend(_coverage_problems(data))
    return data


def _read_manifest(data: RunData, run_dir: Path) -> None:
    """manifest.json into ``data.manifest`` (left empty, with a problem line, when missing or unreadable)."""
    path = run_dir / "manifest.json"
    if not path.is_file():
        data.problems.append("manifest.json is missing: config, versions, chance levels and task facts are unknown")
    else:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            manifest = None
            data.problems.append(f"manifest.json cannot be read ({e})")
        if isinstance(manifest, dict):
            data.manifest = manifest
        elif manifest is not None:
            data.problems.append("manifest.json cannot be read (not a JSON object)")


def _read_scores(data: RunData, run_dir: Path) -> None:
    """results.csv (summarised) into ``data.results``/``data.summary``; summary.csv when results.csv is unusable."""
    path = run_dir / "results.csv"
    if path.is_file():
        try:
            data.results = _in_range(read_results(path), "value", "results.csv", data.problems)
            data.summary = summarize(data.results, data.ratios)
        except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            data.problems.append(f"results.csv cannot be used ({e})")
            data.results = None
    else:
        data.problems.append("results.csv is missing")
    if data.results is None and (run_dir / "summary.csv").is_file():
        try:
            data.summary = _in_range(_read_summary_csv(run_dir / "summary.csv"), "mean", "summary.csv", data.problems)
            data.problems.append("scores come from summary.csv (no fold-level results: no paired gain intervals)")
        except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            data.problems.append(f"summary.csv cannot be used ({e})")
    if data.results is not None and data.results.empty:
        data.problems.append("results.csv holds no rows")
    bad = 0 if data.results is None else int(data.results["value"].isna().sum())
    if bad:
        data.problems.append(f"results.csv has {bad} row(s) without a numeric value; they are ignored")


def _in_range(frame: pd.DataFrame, column: str, name: str, problems: list[str]) -> pd.DataFrame:
    """``frame`` without values outside their metric's range (a Macro-F1 of 7.5 is no score), named in ``problems``."""
    bad = out_of_range(frame["metric"], frame[column])
    if bad.any():
        first = frame[bad].iloc[0]
        where = f"{first['model']} × {first['task']} layer {first['layer']} {first['probe']}"
        problems.append(
            f"{name} has {int(bad.sum())} value(s) outside their metric's range, left out (e.g. {first['metric']} "
            f"{first[column]:g} for {where}{f' fold {first.fold}' if 'fold' in frame.columns else ''})"
        )
    return frame[~bad].reset_index(drop=True) if bad.any() else frame


def _read_analysis(data: RunData, run_dir: Path) -> None:
    """analysis.json and the side tables (permutation, chance, zero-shot diagnostics and correlation)."""
    if (run_dir / "analysis.json").is_file():
        try:
            data.analysis = json.loads((run_dir / "analysis.json").read_text())
        except (OSError, ValueError) as e:
            data.problems.append(f"analysis.json cannot be read ({e})")
    for name, columns, attr in (
        ("permutation.csv", PERMUTATION_COLUMNS, "permutation"),
        ("chance.csv", CHANCE_COLUMNS, "chance"),
        ("zeroshot_diagnostics.csv", ZS_DIAG_COLUMNS, "zeroshot_diagnostics"),
        ("zeroshot_correlation.csv", ZS_CORR_COLUMNS, "zeroshot_correlation"),
    ):
        if not (run_dir / name).is_file():
            continue
        if attr in ("permutation", "chance") and not data.analysis:  # written with this run's analysis.json
            data.problems.append(f"{name} is ignored: this run's analysis.json is missing")
            continue
        try:
            required = [c for c in columns if c not in UNIT_COLUMNS]  # runs written before the unit columns
            setattr(data, attr, read_table(run_dir / name, required))
        except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            data.problems.append(f"{name} cannot be used ({e})")


def _read_bootstrap(run_dir: Path, problems: list[str]) -> pd.DataFrame | None:
    if not (run_dir / "bootstrap.csv").is_file():
        return None
    try:
        return read_csv(run_dir / "bootstrap.csv", dtype={"model": str, "task": str, "probe": str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
        problems.append(f"bootstrap.csv cannot be used ({e})")
        return None


def _coverage_problems(data: RunData) -> list[str]:
    """Tasks, models, layers and folds the manifest promises but results.csv lacks."""
    out = []
    summary = data.summary
    probed = summary[summary["layer"].notna()]
    for task, info in data.tasks_meta.items():
        labels = (info or {}).get("labels") or {}
        if isinstance(labels, dict) and len(labels) == 1:
            out.append(f"task {task} has only one class left ({next(iter(labels))!r}); it cannot be probed")
        elif task not in set(probed["task"]):
            out.append(f"task {task}: no probe results")
    models = list(data.manifest.get("models") or {})
    for model in models:
        for task in data.tasks_meta:
            rows = probed[(probed["model"] == model) & (probed["task"] == task)]
            if task in set(probed["task"]) and rows.empty:
                out.append(f"{model} × {task}: no probe results")
    cv = data.manifest.get("cv") or {}
    depths = data.depths
    gaps: dict[tuple[str, str, str], list[str]] = {}
    for (model, task, probe), rows in probed.groupby(["model", "task", "probe"], sort=True):
        n_layers = depths.get(model)
        if n_layers:
            have = {int(x) for x in rows["layer"].dropna()}
            lost = sorted(set(range(n_layers)) - have)
            if lost:
                gaps.setdefault((model, task, f"layer(s) {_ranges(lost)} missing of {n_layers}"), []).append(probe)
        folds = (cv.get(task) or {}).get("n_folds_total") or data.config.get("folds")
        if folds:
            short = rows[(rows["n"] < int(folds)) & ~rows["metric"].str.endswith("_oof")]
            if not short.empty:
                what = f"only {int(short['n'].min())} of {folds} folds at {len(short['layer'].unique())} layer(s)"
                gaps.setdefault((model, task, what), []).append(probe)
    out.extend(f"{model} × {task}: {what} ({', '.join(probes)})" for (model, task, what), probes in gaps.items())
    for rel in data.manifest.get("figures") or []:
        if not (data.run_dir / rel).is_file():
            out.append(f"figure {rel} listed in manifest.json is missing (redrawn where the scores allow)")
    return list(dict.fromkeys(out))


def _ranges(values: Sequence[int]) -> str:
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}–{v}")
            start = None
    return ", ".join(parts)


def chance_table(data: RunData) -> pd.DataFrame:
    """Per task: classes, clips, majority, uniform and stratified chance Macro-F1 and accuracy, folds grouped,
    flags."""
    columns = [
        "task",
        "num_classes",
        "n_clips",
        "majority_macro_f1",
        "uniform_macro_f1",
        "chance_macro_f1",
        "majority_accuracy",
        "stratified_macro_f1",
        "stratified_accuracy",
        "grouped_folds",
        "paralinguistic",
        "cue",
    ]
    chance = data.manifest.get("chance") or {}
    tasks = list(dict.fromkeys([*data.tasks_meta, *chance, *sorted(set(data.summary["task"]))]))
    rows = []
    for task in tasks:
        info = data.tasks_meta.get(task) or {}
        levels = chance.get(task)
        labels = info.get("labels")
        if isinstance(labels, dict) and labels and "stratified_macro_f1" not in (levels or {}):
            levels = {**chance_levels([k for k, v in labels.items() for _ in range(int(v))]), **(levels or {})}
        levels = levels or {}
        rows.append(
            {
                "task": task,
                "num_classes": levels.get("num_classes", len(labels) if isinstance(labels, dict) else pd.NA),
                "n_clips": info.get("n_clips", pd.NA),
                "majority_macro_f1": levels.get("majority_macro_f1", np.nan),
                "uniform_macro_f1": levels.get("uniform_macro_f1", np.nan),
                "chance_macro_f1": levels.get("macro_f1", np.nan),
                "majority_accuracy": levels.get("majority_accuracy", np.nan),
                "stratified_macro_f1": levels.get("stratified_macro_f1", np.nan),
                "stratified_accuracy": levels.get("stratified_accuracy", np.nan),
                "grouped_folds": info.get("grouped_folds", pd.NA),
                "paralinguistic": info.get("paralinguistic", pd.NA),
                "cue": info.get("cue", ""),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("num_classes", "n_clips"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round().astype("Int64")
    return frame


__all__ = ["RunData", "ZS_CORR_COLUMNS", "ZS_DIAG_COLUMNS", "chance_table", "load_run"]
