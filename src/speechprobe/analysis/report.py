"""The run report: ``report.html`` (one self-contained file), ``report.md``, ``main_table.{csv,tex}``.

:func:`build_report` works from the files in the run directory alone:

- ``results.csv`` (fold-level scores; ``summary.csv`` is used when only it is left),
- ``manifest.json`` (config, versions, models, tasks with ``paralinguistic``/``grouped_folds``/``cue``,
  chance levels, skipped items, warnings),
- optionally ``permutation.csv``, ``chance.csv`` and ``analysis.json`` (with figure captions) written by
  :func:`speechprobe.analysis.plan.analyse_features`, and the t-SNE/UMAP PNGs in ``figures/``,
- optionally ``analyses/*.json`` of the feature-level analyses (:mod:`.outputs`): their figures with
  captions, findings and notes; the depth fingerprints lead the figures and findings.

"Best layer" is the primary probe's everywhere (:mod:`.primary`); other probes are secondary columns.

It (re)draws the figures that need only the scores (layer curves, heatmaps, zero-shot scatter) into
``figures/``, inlines every PNG as base64, and says in the report what is missing instead of failing.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SpeechprobeError
from ..models.registry import default_baselines, nuisance_baselines
from .curves import CURVE_RULE, DEFAULT_TOL, baseline_gain, curve_shapes, paralinguistic_summary
from .inputs import read_table
from .outputs import AnalysisOutput, read_outputs
from .plots import (
    plot_best_heatmap,
    plot_layer_curves,
    plot_layer_heatmaps,
    plot_zeroshot_scatter,
    task_slug,
    zeroshot_points,
)
from .primary import primary_probe, secondary_best
from .selection import CHANCE_COLUMNS, CHANCE_TEXT, PERMUTATION_COLUMNS, PERMUTATION_TEXT
from .summary import (
    SUMMARY_COLUMNS,
    atomic_write,
    best_layers,
    chance_levels,
    fold_size_ratios,
    read_results,
    summarize,
)
from .uncertainty import (
    BOOTSTRAP_TEXT,
    COVERAGE_TEXT,
    best_uncertainty,
    bootstrap_best_table,
    coverage_table,
    uncertainty_warnings,
)

# The columns the report reads from the zero-shot tables (written by speechprobe.zeroshot.link).
ZS_DIAG_COLUMNS = ["model", "task", "mode", "prompt", "macro_f1", "parse_rate", "top_share", "collapsed"]
ZS_CORR_COLUMNS = ["scope", "selection", "method", "r", "ci_low", "ci_high", "n_pairs", "n_collapsed"]
ZS_DIAG_TEXT = (
    "Per zero-shot (model, task, mode, prompt): parse_rate = share of answers naming exactly one label; top_share = "
    "share of clips given the most frequent label; entropies in bits of the predicted and true labels; collapsed: "
    "top_share > max(0.5, (1 + largest true class share) / 2), a score that measures the label prior, not the audio."
)
MAIN_TABLE_COLUMNS = [
    "task",
    "model",
    "probe",
    "layer",
    "num_layers",
    "relative_depth",
    "macro_f1",
    "ci95",
    "n_folds",
    "macro_f1_oof",
    "oof_ci_low",
    "oof_ci_high",
    "p_best",
    "best_layer_distribution",
    "shape",
    "best_baseline",
    "baseline_macro_f1",
    "gain",
    "chance_macro_f1",
]
MAIN_TABLE_TEXT = (
    "Best layer of the primary probe ({primary}) by mean Macro-F1 (over the task's fixed label set) over folds, "
    "± 95% CI (corrected resampled t, Nadeau & Bengio 2003); macro_f1_oof: out-of-fold Macro-F1 (predictions "
    "pooled over folds) with its bootstrap interval over clips (oof_ci); p_best: share of resamples in which this "
    "layer has the probe's highest out-of-fold Macro-F1; shape: the claimed curve shape (undetermined when its "
    "defining differences are within the uncertainty); baseline columns: each hand-crafted feature set with the "
    "same probe; gain: model − best baseline; chance: max(majority, uniform) Macro-F1; p_value / q_value: the "
    "selection-aware permutation test of the best layer and its Benjamini–Hochberg q across the run; "
    "secondary_*: the other probes' own best layer and score (secondary: they do not define the best layer)."
)

# --------------------------------------------------------------------------------------------- loading


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
    frame = pd.read_csv(path, keep_default_na=True)
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
    path = run_dir / "results.csv"
    if path.is_file():
        try:
            data.results = read_results(path)
            data.summary = summarize(data.results, data.ratios)
        except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            data.problems.append(f"results.csv cannot be used ({e})")
            data.results = None
    else:
        data.problems.append("results.csv is missing")
    if data.results is None and (run_dir / "summary.csv").is_file():
        try:
            data.summary = _read_summary_csv(run_dir / "summary.csv")
            data.problems.append("scores come from summary.csv (no fold-level results: no paired gain intervals)")
        except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            data.problems.append(f"summary.csv cannot be used ({e})")
    if data.results is not None and data.results.empty:
        data.problems.append("results.csv holds no rows")
    bad = 0 if data.results is None else int(data.results["value"].isna().sum())
    if bad:
        data.problems.append(f"results.csv has {bad} row(s) without a numeric value; they are ignored")
    for name, columns, attr in (
        ("permutation.csv", PERMUTATION_COLUMNS, "permutation"),
        ("chance.csv", CHANCE_COLUMNS, "chance"),
        ("zeroshot_diagnostics.csv", ZS_DIAG_COLUMNS, "zeroshot_diagnostics"),
        ("zeroshot_correlation.csv", ZS_CORR_COLUMNS, "zeroshot_correlation"),
    ):
        if (run_dir / name).is_file():
            try:
                setattr(data, attr, read_table(run_dir / name, columns))
            except (SpeechprobeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
                data.problems.append(f"{name} cannot be used ({e})")
    data.bootstrap = _read_bootstrap(run_dir, data.problems)
    if (run_dir / "analysis.json").is_file():
        try:
            data.analysis = json.loads((run_dir / "analysis.json").read_text())
        except (OSError, ValueError) as e:
            data.problems.append(f"analysis.json cannot be read ({e})")
    data.outputs, problems = read_outputs(run_dir)
    data.problems.extend(problems)
    data.problems.extend(_coverage_problems(data))
    return data


def _read_bootstrap(run_dir: Path, problems: list[str]) -> pd.DataFrame | None:
    if not (run_dir / "bootstrap.csv").is_file():
        return None
    try:
        return pd.read_csv(run_dir / "bootstrap.csv", dtype={"model": str, "task": str, "probe": str})
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


# --------------------------------------------------------------------------------------------- analysis


def chance_table(data: RunData) -> pd.DataFrame:
    """Per task: classes, clips, majority and uniform chance Macro-F1 and accuracy, folds grouped, flags."""
    columns = [
        "task",
        "num_classes",
        "n_clips",
        "majority_macro_f1",
        "uniform_macro_f1",
        "chance_macro_f1",
        "majority_accuracy",
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
        if not levels and isinstance(labels, dict) and labels:
            levels = chance_levels([k for k, v in labels.items() for _ in range(int(v))])
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
                "grouped_folds": info.get("grouped_folds", pd.NA),
                "paralinguistic": info.get("paralinguistic", pd.NA),
                "cue": info.get("cue", ""),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("num_classes", "n_clips"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round().astype("Int64")
    return frame


def main_table(data: RunData, chance: pd.DataFrame | None = None, shapes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The primary probe's best layer and Macro-F1 ± CI per model and task, its out-of-fold score with the
    bootstrap interval and share of resamples as the probe's best layer, the claimed curve shape, the best
    baseline (same probe), gain and chance; then the selection-aware p and q when tested, and each other
    probe's best layer and score as ``secondary_<probe>_*`` columns."""
    gains = baseline_gain(
        data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary, ratios=data.ratios
    )
    if gains.empty:
        return pd.DataFrame(columns=MAIN_TABLE_COLUMNS)
    best = best_layers(data.summary, "macro_f1", data.depths).set_index(["model", "task", "probe"])
    chance = chance_table(data) if chance is None else chance
    chance_of = chance.set_index("task")["chance_macro_f1"] if not chance.empty else pd.Series(dtype=float)
    shape_of = shapes.set_index(["model", "task", "probe"])["shape"] if shapes is not None and len(shapes) else {}
    rows = []
    for g in gains.itertuples(index=False):
        info = best.loc[(g.model, g.task, g.probe)]
        facts = best_uncertainty(data.bootstrap, g.model, g.task, g.probe, g.layer)
        rows.append(
            {
                "task": g.task,
                "model": g.model,
                "probe": g.probe,
                "layer": g.layer,
                "num_layers": int(info["num_layers"]),
                "relative_depth": g.relative_depth,
                "macro_f1": g.score,
                "ci95": g.ci95,
                "n_folds": int(info["n"]),
                "macro_f1_oof": facts["macro_f1_oof"],
                "oof_ci_low": facts["oof_ci_low"],
                "oof_ci_high": facts["oof_ci_high"],
                "p_best": facts["p_best"],
                "best_layer_distribution": facts["best_layer_distribution"],
                "shape": shape_of.get((g.model, g.task, g.probe), ""),
                "best_baseline": g.baseline,
                "baseline_macro_f1": g.baseline_score,
                "gain": g.gain,
                "chance_macro_f1": float(chance_of.get(g.task, np.nan)),
            }
        )
    table = pd.DataFrame(rows, columns=MAIN_TABLE_COLUMNS)
    all_best = best.reset_index()
    all_best = all_best[all_best["probe"] == data.primary]
    for name in data.baselines:
        scores = all_best[all_best["model"] == name].groupby("task")["mean"].max()
        if not scores.empty:
            table[name] = table["task"].map(scores).astype(float)
    if data.permutation is not None and not data.permutation.empty:
        tested = data.permutation[data.permutation["probe"] == data.primary][["model", "task", "p_value", "q_value"]]
        table = table.merge(tested.drop_duplicates(["model", "task"]), on=["model", "task"], how="left")
    secondary = secondary_best(data.summary, data.primary, data.depths)
    if not secondary.empty:
        table = table.merge(secondary, on=["model", "task"], how="left")
    table["layer"] = table["layer"].astype("Int64")
    return table.sort_values(["task", "model"], kind="mergesort").reset_index(drop=True)


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}"
    return str(v)


def _pm(mean, ci) -> str:
    return f"{_fmt(mean)} ± {_fmt(ci)}" if np.isfinite(ci) else _fmt(mean)


def _task_start(task: str) -> str:
    return task[:1].upper() + task[1:] if re.fullmatch(r"[A-Za-z][\w-]*", task) else f"Task {task}"


def _perm_verdict(p: float, n: int, alpha: float = 0.05, q: float = float("nan"), n_layers: int = 1) -> str:
    """The selection-aware test of a best layer in words (p against the shuffled maxima over the layers)."""
    floor = 1 / (1 + n)
    chosen = f"the best of {n_layers} layers, tested as selected: " if n_layers > 1 else ""
    stats = f"p = {p:.3g}" + (f", q = {q:.3g}" if np.isfinite(q) else "") + f", {n} permutations"
    if p <= alpha:
        return f"is above shuffled labels ({chosen}{stats})"
    if p <= floor + 1e-12:
        return (
            f"beats every one of the {n} shuffles ({chosen}p = {p:.3g}, the smallest p that {n} permutations "
            f"allow; run at least {math.ceil(1 / alpha) - 1} for a {alpha:.0%} test)"
        )
    return f"is not distinguishable from shuffled labels at the {alpha:.0%} level ({chosen}{stats})"


def _test_phrases(data: RunData, model: str, task: str) -> list[str]:
    """The selection-aware test of a (model, task)'s best layer and its layers above empirical chance."""
    out = []
    perm = data.permutation
    if perm is not None and not perm.empty:
        rows = perm[(perm["model"] == model) & (perm["task"] == task)]
        if not rows.empty:
            p = rows.iloc[0]
            q = float(p["q_value"]) if pd.notna(p.get("q_value")) else float("nan")
            verdict = _perm_verdict(float(p["p_value"]), int(p["n_permutations"]), q=q, n_layers=int(p["num_layers"]))
            out.append(f"layer {int(p['layer'])} ({p['probe']}) {verdict}")
    chance = data.chance
    if chance is not None and not chance.empty:
        rows = chance[(chance["model"] == model) & (chance["task"] == task)]
        if len(rows) > 1:
            top = rows.loc[rows["above_chance"].idxmax()]
            held = int((rows["p_holm"] <= 0.05).sum())
            out.append(
                f"score above empirical chance peaks at layer {int(top['layer'])} (+{top['above_chance']:.3f}); "
                f"{held} of {len(rows)} layers are above chance after Holm's correction"
            )
    return out


def findings(data: RunData, table: pd.DataFrame, shapes: pd.DataFrame, para: pd.DataFrame) -> list[str]:
    """Plain sentences generated from the numbers."""
    out = []
    probed = sorted(set(data.summary.loc[data.summary["layer"].notna(), "model"]))
    bases = [m for m in probed if m in data.baselines or data.depths.get(m) == 1]
    models = [m for m in probed if m not in bases]
    probes = sorted(p for p in set(data.summary["probe"]) if not p.startswith("zeroshot:") and p != "kmeans")
    tasks = sorted(set(data.summary["task"]))
    if not probed:
        return ["No probe scores are available, so no findings can be stated; see “Missing or partial data”."]
    folds = data.config.get("folds")
    seed = data.config.get("seed", data.manifest.get("seed", 0))
    out.append(
        f"This run probed {len(models)} model(s) ({', '.join(models) or 'none'})"
        + (f" and {len(bases)} hand-crafted baseline(s) ({', '.join(bases)})" if bases else "")
        + f" on {len(tasks)} task(s) ({', '.join(tasks)}) with the {', '.join(probes) or 'no'} probe(s)"
        + (f" over {folds} cross-validation folds (seed {seed})." if folds else ".")
    )
    shape_of = shapes.set_index(["model", "task", "probe"]) if not shapes.empty else None
    for r in table.itertuples(index=False):
        if pd.isna(r.macro_f1):
            continue
        parts = [f"layer {r.layer} of 0–{r.num_layers - 1}, {r.probe}; Macro-F1 {_pm(r.macro_f1, r.ci95)}"]
        if pd.notna(r.p_best):
            spread = r.best_layer_distribution or f"layer {r.layer} in {100 * r.p_best:.0f} % of resamples"
            parts.append(
                f"out-of-fold Macro-F1 {_fmt(r.macro_f1_oof)} [{_fmt(r.oof_ci_low)}, {_fmt(r.oof_ci_high)}] "
                f"(bootstrap over clips); best {r.probe} layer over resamples: {spread}"
            )
        if pd.notna(r.baseline_macro_f1):
            parts.append(f"baseline {r.best_baseline} {_fmt(r.baseline_macro_f1)}")
        if pd.notna(r.chance_macro_f1):
            parts.append(f"chance {_fmt(r.chance_macro_f1)}")
        if r.num_layers > 1:
            sentence = (
                f"{_task_start(r.task)} peaks at relative depth {r.relative_depth:.2f} in {r.model} "
                f"({'; '.join(parts)})."
            )
        else:
            sentence = (
                f"{_task_start(r.task)} reaches Macro-F1 {_pm(r.macro_f1, r.ci95)} with {r.model} "
                f"({'; '.join(parts[1:]) or r.probe})."
            )
        extra = []
        if shape_of is not None and (r.model, r.task, r.probe) in shape_of.index:
            extra.append(_shape_phrase(shape_of.loc[(r.model, r.task, r.probe)], r.probe))
        if pd.notna(r.gain):
            verb = "above" if r.gain > 0 else "below" if r.gain < 0 else "level with"
            extra.append(f"{abs(r.gain):.3f} {verb} the best hand-crafted baseline")
        tests = _test_phrases(data, r.model, r.task)
        below = r.macro_f1 - (r.ci95 if np.isfinite(r.ci95) else 0) <= r.chance_macro_f1
        if pd.notna(r.chance_macro_f1) and below and not tests:  # the permutation test, when run, decides
            extra.append("not clearly above chance")
        extra += tests
        if extra:
            sentence = sentence[:-1] + "; " + "; ".join(extra) + "."
        out.append(sentence)
    for task, rows in table.dropna(subset=["macro_f1"]).groupby("task", sort=True):
        if len(rows) < 2:
            continue
        top = rows.sort_values("macro_f1", ascending=False).iloc[0]
        out.append(f"On {task}, {top['model']} is the best model (Macro-F1 {_fmt(top['macro_f1'])}).")
    out.extend(nuisance_findings(table, nuisance_baselines()))
    if not shapes.empty:
        counts = Counter(shapes["shape"])
        out.append(f"Of {len(shapes)} layer curves, " + ", ".join(f"{n} {k}" for k, n in counts.most_common()) + ".")
    for model, rows in para.groupby("model", sort=True):
        known = rows[rows["group"] != "unknown"].set_index("group")
        if {"paralinguistic", "non-paralinguistic"} <= set(known.index):
            a, b = known.loc["paralinguistic"], known.loc["non-paralinguistic"]
            out.append(
                f"In {model}, paralinguistic tasks peak at mean relative depth {a['mean_relative_depth']:.2f} "
                f"(mean Macro-F1 {_fmt(a['mean_score'])}, mean gain {_signed(a['mean_gain'])}) versus "
                f"{b['mean_relative_depth']:.2f} for non-paralinguistic tasks (mean Macro-F1 {_fmt(b['mean_score'])}, "
                f"mean gain {_signed(b['mean_gain'])})."
            )
        elif not known.empty:
            g = known.index[0]
            a = known.loc[g]
            out.append(
                f"In {model}, the {g} tasks peak at mean relative depth {a['mean_relative_depth']:.2f} "
                f"(mean Macro-F1 {_fmt(a['mean_score'])}, mean gain {_signed(a['mean_gain'])})."
            )
    return out


def _shape_phrase(s: pd.Series, probe: str) -> str:
    """The claimed shape of one curve with the intervals of its defining differences."""
    if s["shape"] == "undetermined":
        return (
            f"the shape of its {probe} curve is undetermined (looks {s['shape_point']}, but not over the "
            f"95% interval of {s['evidence']})"
        )
    return (
        f"its {probe} curve is {s['shape']}"
        + (f" ({s['evidence']})" if s["evidence"] else "")
        + (f" ({s['concavity']}, curvature {s['curvature']:+.2f})" if s["concavity"] else "")
    )


NUISANCE_SHARE = 0.5  # a nuisance baseline covering at least this share of the best model's lead over chance


def nuisance_findings(table: pd.DataFrame, nuisances: Mapping[str, str]) -> list[str]:
    """One sentence per task that nuisance baselines alone largely solve, the strongest first.

    With ``m`` the best model's Macro-F1 on the task, ``b`` the nuisance baseline's and ``c`` chance,
    the baseline "largely solves" the task when ``(b - c) / (m - c) >= NUISANCE_SHARE``: it covers at
    least half of the model's lead over chance. ``nuisances``: baseline name -> what it measures.
    """
    out = []
    for task, rows in table.dropna(subset=["macro_f1"]).groupby("task", sort=True):
        top = rows.loc[rows["macro_f1"].idxmax()]
        chance = float(top["chance_macro_f1"]) if pd.notna(top["chance_macro_f1"]) else 0.0
        lead = float(top["macro_f1"]) - chance
        found = [
            (share, name, what, float(top[name]))
            for name, what in nuisances.items()
            if lead > 0 and name in rows and pd.notna(top[name])
            for share in [(float(top[name]) - chance) / lead]
            if share >= NUISANCE_SHARE
        ]
        if not found:
            continue
        (share, name, what, score), *more = sorted(found, key=lambda f: (-f[0], f[1]))
        sentence = (
            f"{_task_start(task)} is largely solvable from {what}: the {name} baseline alone reaches Macro-F1 "
            f"{_fmt(score)} (chance {_fmt(chance)}), {share:.0%} of the way from chance to the best model "
            f"({top['model']}, {_fmt(top['macro_f1'])})"
        )
        also = [f"{w} ({n} {_fmt(b)}, {s:.0%})" for s, n, w, b in more]
        if also:
            sentence += "; " + " and ".join([", ".join(also[:-1]), also[-1]] if len(also) > 1 else also)
            sentence += " also reach" + ("" if len(also) > 1 else "es") + " at least half of that lead"
        out.append(sentence + ".")
    return out


def zeroshot_findings(data: RunData) -> list[str]:
    """Sentences on collapsed zero-shot answer sets and on the zero-shot ↔ probe correlation."""
    out = []
    diag = data.zeroshot_diagnostics
    if diag is not None and not diag.empty:
        flagged = diag[diag["collapsed"].astype(str).str.lower().isin(["true", "1", "1.0"])]
        for (model, task), rows in flagged.groupby(["model", "task"], sort=True):
            total = int(((diag["model"] == model) & (diag["task"] == task)).sum())
            which = ", ".join(f"{r.mode}:{r.prompt} {float(r.top_share):.0%}" for r in rows.itertuples(index=False))
            out.append(
                f"Zero-shot {model} on {task} collapsed in {len(rows)} of {total} (mode, prompt) settings, one label "
                f"taking most answers ({which}): those scores measure the decoder's label prior, not the audio, and "
                "are kept out of the zero-shot ↔ probe correlation."
            )
    corr = data.zeroshot_correlation
    if corr is not None and not corr.empty:
        rows = corr[(corr["scope"] == "pooled") & (corr["method"] == "spearman")].set_index("selection")
        if "default" in rows.index and np.isfinite(float(rows.loc["default", "r"])):
            r = rows.loc["default"]
            ci = f"[{float(r['ci_low']):.2f}, {float(r['ci_high']):.2f}]"
            sentence = (
                f"Across {int(r['n_pairs'])} (model, task) pairs ({int(r['n_collapsed'])} collapsed left out), "
                f"chance-normalised zero-shot skill (default mode, mean over prompts) and best-layer probe score "
                f"correlate with Spearman ρ = {float(r['r']):.2f} {ci} (95% bootstrap over tasks)"
            )
            if "oracle" in rows.index and np.isfinite(float(rows.loc["oracle", "r"])):
                oracle = float(rows.loc["oracle", "r"])
                sentence += f"; with the best prompt chosen on the test labels (oracle) ρ = {oracle:.2f}"
            out.append(sentence + ".")
    return out


def _signed(v) -> str:
    return "–" if pd.isna(v) else f"{v:+.3f}"


def warnings_for(data: RunData) -> list[str]:
    """Fold-grouping warnings per task plus the run's own warnings (deduplicated)."""
    run_warnings = [str(w) for w in data.manifest.get("warnings") or []]
    out = []
    for task, info in data.tasks_meta.items():
        if (info or {}).get("grouped_folds") is False:
            out.append(
                f"Folds for task {task} were not grouped by speaker (no speaker/group column): the same "
                f"speaker can appear in training and test folds, which may inflate its scores."
            )
    if data.permutation is not None and not data.permutation.empty and "grouped" in data.permutation:
        for r in data.permutation.itertuples(index=False):
            if str(r.grouped).lower() in ("false", "0") and r.task not in data.tasks_meta:
                out.append(f"Statistics for task {r.task} used folds not grouped by speaker.")
    for w in run_warnings:
        if not ("not grouped" in w and any(f"task {t}:" in w for t in data.tasks_meta)):
            out.append(w)
    out.extend(uncertainty_warnings(data.manifest))
    for key, items in (data.manifest.get("truncated") or {}).items():
        out.append(f"{key}: {len(items)} clip(s) were longer than the model's window and were truncated.")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------- figures


@dataclass
class FigureEntry:
    path: Path
    caption: str
    section: str


def make_figures(data: RunData, chance: pd.DataFrame) -> tuple[list[FigureEntry], list[str]]:
    """Draw the score-only figures into RUN/figures and collect every PNG there with a caption."""
    fig_dir = data.run_dir / "figures"
    entries: list[FigureEntry] = []
    problems: list[str] = []
    summary = data.summary
    chance_line = {r.task: float(r.chance_macro_f1) for r in chance.itertuples() if pd.notna(r.chance_macro_f1)}
    folds = data.config.get("folds")
    over = f"over {folds} folds" if folds else "over folds"
    try:
        for rel in (False, True):
            for png in plot_layer_curves(
                summary, fig_dir, chance_line, "macro_f1", rel, "layers_rel" if rel else "layers", data.depths
            ):
                task = _task_from(png.stem.split("_", 2 if rel else 1)[-1], summary["task"])
                axis = "relative depth (0 = input embedding, 1 = last layer)" if rel else "absolute layer index"
                entries.append(
                    FigureEntry(
                        png,
                        (
                            f"Macro-F1 per layer on {task}, against {axis}. Lines: mean {over} per model and probe; "
                            "shaded bands: 95% CI (corrected resampled t); "
                            "solid horizontal lines: hand-crafted baselines at their best probe; "
                            f"dotted line: chance ({_fmt(chance_line.get(task, float('nan')))}, "
                            "the higher of majority-class and uniform Macro-F1)."
                        ),
                        "Layer curves",
                    )
                )
        png = plot_best_heatmap(summary, fig_dir / "heatmap_best.png", "macro_f1", data.depths, data.primary)
        if png:
            entries.append(
                FigureEntry(
                    png,
                    f"Best Macro-F1 per model (rows) and task (columns), at each pair's best layer of the "
                    f"primary probe ({data.primary}); grey: no result.",
                    "Heatmaps",
                )
            )
        for png in plot_layer_heatmaps(summary, fig_dir, "macro_f1", data.depths):
            model = _task_from(png.stem.removeprefix("heatmap_layers_"), summary["model"])
            entries.append(
                FigureEntry(
                    png,
                    f"Macro-F1 of {model} per layer (rows) and task (columns), one panel per probe; grey: no result.",
                    "Heatmaps",
                )
            )
        png = plot_zeroshot_scatter(summary, fig_dir / "zeroshot_vs_probe.png", probe=data.primary)
        if png:
            entries.append(
                FigureEntry(
                    png,
                    "Zero-shot Macro-F1 (one point per model, task and prompt) against the best-layer Macro-F1 of "
                    f"the primary probe ({data.primary}) of the same model (hollow: of any model); points below the "
                    "dashed diagonal are tasks where probing the layers recovers more than prompting.",
                    "Zero-shot vs probes",
                )
            )
    except Exception as e:
        problems.append(f"some figures could not be drawn ({type(e).__name__}: {e})")
    for out in data.outputs:  # figures of the feature-level analyses, with their own captions
        notes = (FigureEntry(data.run_dir / f.path, f.caption, f.section) for f in out.figures)
        entries.extend(e for e in notes if e.path.is_file())
    known = {e.path.name for e in entries}
    models = sorted(set(summary["model"]) | set(data.manifest.get("models") or {}))
    tasks = sorted(set(summary["task"]) | set(data.tasks_meta))
    pairs = {
        f"{kind}_{task_slug(m)}_{task_slug(t)}.png": (kind, m, t)
        for kind in ("tsne", "umap")
        for m in models
        for t in tasks
    }
    if fig_dir.is_dir():
        for png in sorted(fig_dir.glob("*.png")):
            if png.name in known:
                continue
            written = (data.analysis.get("captions") or {}).get(str(png.relative_to(data.run_dir)))
            if written:  # an analysis wrote this figure with its caption (analysis.json)
                section = "Embeddings" if png.name in pairs else "Analyses"
                entries.append(FigureEntry(png, str(written), section))
            elif png.name in pairs:
                kind, model, task = pairs[png.name]
                name = "t-SNE" if kind == "tsne" else "UMAP"
                caption = (
                    f"{name} of {model} on {task}: the first layer, the best layer and the last layer (panel titles), "
                    f"standardised (PCA to 50 dimensions when larger), points coloured by label."
                )
                entries.append(FigureEntry(png, caption, "Embeddings"))
            else:
                entries.append(FigureEntry(png, f"Figure {png.name} found in figures/.", "Other figures"))
    return entries, problems


def _task_from(slug: str, names: Iterable[str]) -> str:
    for name in sorted(set(names)):
        if task_slug(str(name)) == slug:
            return str(name)
    return slug


# --------------------------------------------------------------------------------------------- tables


@dataclass
class Table:
    title: str
    frame: pd.DataFrame
    note: str = ""
    formats: dict[str, int] = field(default_factory=dict)  # column -> decimals


def _tables(
    data: RunData,
    table: pd.DataFrame,
    shapes: pd.DataFrame,
    gains: pd.DataFrame,
    para: pd.DataFrame,
    chance: pd.DataFrame,
) -> list[Table]:
    best = best_layers(data.summary, "macro_f1", data.depths)
    out = [
        Table(
            "Main table: best layer and Macro-F1 per model and task",
            table,
            MAIN_TABLE_TEXT.format(primary=data.primary),
        ),
        Table(
            "Best layer per model, task and probe",
            best.rename(columns={"mean": "macro_f1", "n": "n_folds"}),
            f'Every probe\'s own best layer (the primary probe, {data.primary}, defines "the best layer"); '
            "ties go to the lowest layer; relative depth = layer / (layers − 1); ci95: corrected resampled t.",
        ),
        Table("Best-layer uncertainty", bootstrap_best_table(data.bootstrap, best), BOOTSTRAP_TEXT),
        Table(
            "Layer-curve shapes",
            shapes,
            CURVE_RULE.format(tol=DEFAULT_TOL),
            {"curvature": 2, "vertex": 2, "peak_depth": 2, "r2": 2},
        ),
        Table(
            "Gain over the hand-crafted baselines",
            gains,
            "gain_ci95: corrected resampled-t 95% CI half-width of the per-fold paired differences (same folds "
            "for every model); "
            "the best layer is picked on the same folds, so gains are slightly optimistic.",
        ),
        Table(
            "Paralinguistic vs non-paralinguistic tasks",
            para,
            "Task groups from the paralinguistic flag in manifest.json; means over the tasks of each group.",
        ),
        Table(
            "Chance levels and task facts",
            chance,
            "Majority: always the most frequent class; uniform: a uniformly random class (expected Macro-F1).",
        ),
        Table("Cross-validation and class coverage", coverage_table(data.manifest), COVERAGE_TEXT),
    ]
    if data.permutation is not None and not data.permutation.empty:
        out.append(
            Table(
                "Selection-aware permutation tests of the best layer",
                data.permutation,
                PERMUTATION_TEXT,
                {"p_value": 4, "q_value": 4},
            )
        )
    if data.chance is not None and not data.chance.empty:
        out.append(Table("Empirical chance per layer", data.chance, CHANCE_TEXT, {"p_layer": 4, "p_holm": 4}))
    if data.zeroshot_diagnostics is not None and not data.zeroshot_diagnostics.empty:
        out.append(Table("Zero-shot answers: parse rate and collapse", data.zeroshot_diagnostics, ZS_DIAG_TEXT))
    zs = zeroshot_points(data.summary, probe=data.primary)
    if not zs.empty:
        out.append(
            Table(
                "Zero-shot vs probes",
                zs,
                f"probe_score: the best-layer Macro-F1 of the primary probe ({data.primary}) it is compared with "
                "(reference).",
            )
        )
    return out


def _cell(v, decimals: int = 3) -> tuple[str, str, bool]:
    """(display text, sort key, numeric) of one cell."""
    if isinstance(v, (float, np.floating)) and np.isfinite(v):
        return f"{float(v):.{decimals}f}", repr(float(v)), True
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v)), str(int(v)), True
    text = _fmt(v, decimals)
    return text, text, False


def _html_table(t: Table, index: int) -> str:
    frame = t.frame
    if frame.empty:
        body = "<p class='empty'>No rows.</p>"
    else:
        head = "".join(f"<th scope='col' title='click to sort'>{html.escape(str(c))}</th>" for c in frame.columns)
        rows = []
        for rec in frame.itertuples(index=False):
            cells = []
            for col, v in zip(frame.columns, rec):
                text, key, numeric = _cell(v, t.formats.get(col, 3))
                flag = " data-n" if numeric else ""
                cells.append(f"<td data-v='{html.escape(key, quote=True)}'{flag}>{html.escape(text)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        body = (
            f"<div class='scroll'><table class='sortable' id='table-{index}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    note = f"<p class='note'>{html.escape(t.note)}</p>" if t.note else ""
    return f"<section><h3>{html.escape(t.title)}</h3>{note}{body}</section>"


def _md_table(frame: pd.DataFrame, formats: dict[str, int] | None = None) -> str:
    if frame.empty:
        return "_No rows._"
    formats = formats or {}

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(esc(str(c)) for c in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    for rec in frame.itertuples(index=False):
        lines.append("| " + " | ".join(esc(_cell(v, formats.get(c, 3))[0]) for c, v in zip(frame.columns, rec)) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- LaTeX


def _tex(s: str) -> str:
    repl = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(repl.get(ch, ch) for ch in str(s))


def main_table_latex(table: pd.DataFrame, baselines: Sequence[str]) -> str:
    """booktabs table: one row per task; per model the best layer (relative depth) and Macro-F1 ± CI;
    then each baseline's Macro-F1; the best score of each row in bold."""
    models = sorted(table["model"].dropna().unique()) if not table.empty else []
    bases = [b for b in baselines if b in table.columns and table[b].notna().any()]
    tasks = sorted(table["task"].unique()) if not table.empty else []
    spec = "l" + "rr" * len(models) + "r" * len(bases)
    head1 = ["Task"] + [rf"\multicolumn{{2}}{{c}}{{{_tex(m)}}}" for m in models] + [_tex(b) for b in bases]
    rules = " ".join(rf"\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(models)))
    head2 = [""] + ["layer", "Macro-F1"] * len(models) + ["Macro-F1"] * len(bases)
    body = []
    for task in tasks:
        rows = table[table["task"] == task].set_index("model")
        scores = [float(rows.loc[m, "macro_f1"]) if m in rows.index else np.nan for m in models]
        base_scores = [float(rows[b].dropna().iloc[0]) if rows[b].notna().any() else np.nan for b in bases]
        finite = [s for s in scores + base_scores if np.isfinite(s)]
        top = max(finite) if finite else np.nan
        cells = [_tex(task)]
        for m, s in zip(models, scores):
            if not np.isfinite(s):
                cells += ["--", "--"]
                continue
            r = rows.loc[m]
            value = f"{s:.3f}"
            value = rf"\textbf{{{value}}}" if np.isclose(s, top) else value
            ci = f" $\\pm$ {float(r['ci95']):.3f}" if pd.notna(r["ci95"]) else ""
            cells += [f"{int(r['layer'])} ({float(r['relative_depth']):.2f})", value + ci]
        for s in base_scores:
            cells.append("--" if not np.isfinite(s) else (rf"\textbf{{{s:.3f}}}" if np.isclose(s, top) else f"{s:.3f}"))
        body.append(" & ".join(cells) + r" \\")
    lines = [
        "% speechprobe main table; needs \\usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        (
            r"\caption{Best layer (relative depth) and Macro-F1 (mean $\pm$ 95\% CI over folds) per model and task, "
            r"with hand-crafted baselines. Bold: best per task.}"
        ),
        r"\label{tab:speechprobe-main}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(head1) + r" \\",
    ]
    if rules:
        lines.append(rules)
    lines += [
        " & ".join(head2) + r" \\",
        r"\midrule",
        *(body or [r"\multicolumn{1}{l}{(no results)} \\"]),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- rendering

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;
  color:#1d232a;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.7em;margin:.2em 0}h2{border-bottom:2px solid #e3e7ec;padding-bottom:4px;margin-top:2em}
h3{margin-bottom:.3em}.meta{color:#5b6570}.note{color:#4a535c;font-size:.92em;max-width:70em}
ul.findings li{margin:.35em 0;line-height:1.45}.warn{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 14px}
.missing{background:#fdecea;border-left:4px solid #c62828;padding:8px 14px}
.scroll{overflow-x:auto;max-height:34em;overflow-y:auto}
table{border-collapse:collapse;font-size:.86em;margin:.4em 0}
th,td{border:1px solid #d5dbe1;padding:3px 8px;text-align:left;white-space:nowrap}
td[data-n]{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#eef2f6;cursor:pointer;position:sticky;top:0;user-select:none}
thead th[aria-sort=ascending]::after{content:' \\25B2'}thead th[aria-sort=descending]::after{content:' \\25BC'}
tbody tr:nth-child(even){background:#f8fafb}
figure{margin:1.2em 0;padding:0}figure img{max-width:100%;height:auto;border:1px solid #eceff2}
figcaption{color:#3b444c;font-size:.92em;max-width:70em}
pre{background:#f5f7f9;padding:10px;overflow-x:auto;font-size:.85em}
nav a{margin-right:1em}
"""

SORT_JS = """
(function(){
  function key(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
    return td.hasAttribute('data-n')?{n:parseFloat(v)}:{s:v};}
  function cmp(a,b){if('n' in a&&'n' in b)return a.n-b.n;if('n' in a)return -1;if('n' in b)return 1;
    return a.s.localeCompare(b.s);}
  document.querySelectorAll('table.sortable').forEach(function(table){
    var heads=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads,function(th,col){
      th.addEventListener('click',function(){
        var asc=th.getAttribute('aria-sort')!=='ascending';
        Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',asc?'ascending':'descending');
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(r1,r2){var c=cmp(key(r1.cells[col]),key(r2.cells[col]));return asc?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  document.documentElement.setAttribute('data-sortable','ready');
})();
"""


def _kv_table(items: dict, title: str) -> Table:
    rows = [(str(k), json.dumps(v, default=str) if isinstance(v, (dict, list)) else _fmt(v)) for k, v in items.items()]
    return Table(title, pd.DataFrame(rows, columns=["key", "value"]))


def _models_frame(manifest: dict) -> pd.DataFrame:
    rows = []
    for name, info in (manifest.get("models") or {}).items():
        info = info or {}
        rows.append(
            {k: info.get(k, "") for k in ("family", "source", "revision", "num_layers", "hidden_size", "sample_rate")}
            | {"model": name}
        )
    cols = ["model", "family", "source", "revision", "num_layers", "hidden_size", "sample_rate"]
    return pd.DataFrame(rows, columns=cols)


def _skipped_frame(manifest: dict) -> pd.DataFrame:
    skipped = manifest.get("skipped") or {}
    items = skipped.get("items", []) if isinstance(skipped, dict) else skipped if isinstance(skipped, list) else []
    rows = [
        {"task": i.get("task", ""), "item": i.get("item", ""), "reason": i.get("reason", "")}
        for i in items
        if isinstance(i, dict)
    ]
    return pd.DataFrame(rows, columns=["task", "item", "reason"])


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@dataclass
class Report:
    """Everything both renderers need."""

    title: str
    findings: list[str]
    warnings: list[str]
    problems: list[str]
    tables: list[Table]
    figures: list[FigureEntry]
    run_tables: list[Table]
    notes: list[str]


def render_html(rep: Report) -> str:
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(rep.title)}</title>",
        # Inline style and script only; the page may load nothing from anywhere.
        (
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        ),
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>{html.escape(rep.title)}</h1>",
        (
            "<nav><a href='#findings'>Findings</a><a href='#tables'>Tables</a><a href='#figures'>Figures</a>"
            "<a href='#run'>Run details</a></nav>"
        ),
        "<h2 id='findings'>Findings</h2><ul class='findings'>",
        *(f"<li>{html.escape(s)}</li>" for s in rep.findings),
        "</ul>",
    ]
    if rep.warnings:
        parts += [
            "<div class='warn'><h3>Warnings</h3><ul>",
            *(f"<li>{html.escape(w)}</li>" for w in rep.warnings),
            "</ul></div>",
        ]
    if rep.problems:
        parts += [
            "<div class='missing'><h3>Missing or partial data</h3><ul>",
            *(f"<li>{html.escape(p)}</li>" for p in rep.problems),
            "</ul></div>",
        ]
    parts.append("<h2 id='tables'>Tables</h2><p class='note'>Click a column header to sort.</p>")
    k = 0
    for t in rep.tables:
        parts.append(_html_table(t, k))
        k += 1
    parts.append("<h2 id='figures'>Figures</h2>")
    if not rep.figures:
        parts.append("<p class='empty'>No figures.</p>")
    section = None
    for n, fig in enumerate(rep.figures, 1):
        if fig.section != section:
            section = fig.section
            parts.append(f"<h3>{html.escape(section)}</h3>")
        alt = html.escape(f"Figure {n}: {fig.path.stem}", quote=True)
        parts.append(
            f"<figure id='fig-{n}'><img src='{_png_data_uri(fig.path)}' alt='{alt}'>"
            f"<figcaption><b>Figure {n}.</b> {html.escape(fig.caption)}</figcaption></figure>"
        )
    parts.append("<h2 id='run'>Run details</h2>")
    if rep.notes:
        parts += ["<h3>Analysis notes</h3><ul>", *(f"<li>{html.escape(s)}</li>" for s in rep.notes), "</ul>"]
    for t in rep.run_tables:
        parts.append(_html_table(t, k))
        k += 1
    parts += [f"<script>{SORT_JS}</script>", "</main></body></html>", ""]
    return "\n".join(parts)


def render_markdown(rep: Report, run_dir: Path) -> str:
    lines = [f"# {rep.title}", "", "## Findings", ""]
    lines += [f"- {s}" for s in rep.findings] + [""]
    if rep.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in rep.warnings], ""]
    if rep.problems:
        lines += ["## Missing or partial data", "", *[f"- {p}" for p in rep.problems], ""]
    lines += ["## Tables", ""]
    for t in rep.tables:
        lines += [f"### {t.title}", ""] + ([t.note, ""] if t.note else []) + [_md_table(t.frame, t.formats), ""]
    lines += ["## Figures", ""]
    for n, fig in enumerate(rep.figures, 1):
        rel = fig.path.relative_to(run_dir).as_posix()
        lines += [f"![Figure {n}]({rel})", "", f"*Figure {n}.* {fig.caption}", ""]
    lines += ["## Run details", ""]
    if rep.notes:
        lines += [*[f"- {s}" for s in rep.notes], ""]
    for t in rep.run_tables:
        lines += [f"### {t.title}", "", _md_table(t.frame, t.formats), ""]
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def write_main_table(run_dir: Path, table: pd.DataFrame, baselines: Sequence[str] | None = None) -> tuple[Path, Path]:
    """``main_table.csv`` (long form, :data:`MAIN_TABLE_COLUMNS` plus one column per baseline) and
    ``main_table.tex``; ``baselines``: None for the model registry's default baselines."""
    baselines = default_baselines() if baselines is None else baselines
    run_dir = Path(run_dir)
    buf = io.StringIO()
    table.to_csv(buf, index=False, lineterminator="\n")
    csv_path = _write_text(run_dir / "main_table.csv", buf.getvalue())
    tex_path = _write_text(run_dir / "main_table.tex", main_table_latex(table, baselines))
    return csv_path, tex_path


def _skipped_count(manifest: dict) -> int:
    skipped = manifest.get("skipped")
    return int(skipped.get("count", 0)) if isinstance(skipped, dict) else 0


LEAD_ANALYSIS = "fingerprints"  # the depth fingerprints headline the report


def _lead_with(rep: Report, outputs: Sequence[AnalysisOutput], name: str) -> None:
    """Move the figures and findings of analysis ``name`` to the top (its findings after the first line)."""
    lead = [o for o in outputs if o.analysis == name]
    names = {Path(f.path).name for o in lead for f in o.figures}
    first = [f for f in rep.figures if f.path.name in names]
    sentences = [s for o in lead for s in o.findings]
    rep.figures = first + [f for f in rep.figures if f not in first]
    rest = [s for s in rep.findings if s not in sentences]
    rep.findings = rest[:1] + sentences + rest[1:]


def build_report(run_dir: Path, title: str | None = None) -> Path:
    """Write ``RUN/report.html``, ``RUN/report.md``, ``RUN/main_table.csv`` and ``RUN/main_table.tex``
    (and the score figures in ``RUN/figures``) from the files in ``run_dir``; return the HTML path.

    Missing or partial inputs are listed in the report's “Missing or partial data” box; whatever can
    be computed is still rendered. Raises SpeechprobeError only when ``run_dir`` is not a directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpeechprobeError(f"{run_dir}: no such run directory")
    data = load_run(run_dir)
    chance = chance_table(data)
    shapes = curve_shapes(data.summary, "macro_f1", DEFAULT_TOL, data.depths, data.results, data.ratios)
    gains = baseline_gain(
        data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary, ratios=data.ratios
    )
    para = paralinguistic_summary(gains, data.tasks_meta)
    table = main_table(data, chance, shapes)
    figures, fig_problems = make_figures(data, chance)
    problems = [*data.problems, *fig_problems]
    run_tables = [
        _kv_table(data.config, "Configuration"),
        _kv_table(data.manifest.get("versions") or {}, "Versions"),
        Table("Models", _models_frame(data.manifest)),
        Table(
            "Skipped items",
            _skipped_frame(data.manifest),
            f"{_skipped_count(data.manifest)} item(s) skipped, with reasons.",
        ),
    ]
    notes = [str(n) for n in data.analysis.get("notes", [])]
    notes += [f"{out.analysis}: {n}" for out in data.outputs for n in out.notes]
    if data.permutation is None:
        notes.append(
            "No permutation.csv: permutation tests were not run (speechprobe report --permutations N runs them)."
        )
    if data.chance is None:
        notes.append("No chance.csv: the empirical chance per layer comes with the permutation tests.")
    rep = Report(
        title=title or f"speechprobe report: {run_dir.name}",
        findings=[
            *findings(data, table, shapes, para),
            *zeroshot_findings(data),
            *(s for out in data.outputs for s in out.findings),
        ],
        warnings=warnings_for(data),
        problems=problems,
        tables=_tables(data, table, shapes, gains, para, chance),
        figures=figures,
        run_tables=run_tables,
        notes=notes,
    )
    _lead_with(rep, data.outputs, LEAD_ANALYSIS)
    write_main_table(run_dir, table, data.baselines)
    _write_text(run_dir / "report.md", render_markdown(rep, run_dir))
    return _write_text(run_dir / "report.html", render_html(rep))


__all__ = [
    "MAIN_TABLE_COLUMNS",
    "RunData",
    "build_report",
    "chance_table",
    "findings",
    "load_run",
    "main_table",
    "main_table_latex",
    "write_main_table",
]
