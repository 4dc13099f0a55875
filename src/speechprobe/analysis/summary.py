"""Fold-level results → per-layer summaries, best layers, chance levels and the headline table."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SpeechprobeError
from ..models.registry import default_baselines
from ..rundir import RunDir, coerce_results, read_results

KEYS = ["model", "task", "layer", "probe", "metric"]
SUMMARY_COLUMNS = [*KEYS, "mean", "std", "n", "ci95"]


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, kind="mergesort", na_position="last").reset_index(drop=True)


def summarize(results: pd.DataFrame, ratio: float | Mapping[str, float] | None = None) -> pd.DataFrame:
    """Mean, std (ddof=1), n and 95% CI half-width over folds per (model, task, layer, probe, metric).

    ``ci95`` of a probe score (a row with a layer) is the corrected resampled-t interval of Nadeau &
    Bengio (2003) over its ``n = J`` fold scores (repeats x folds): ``t(0.975, J-1) * sqrt((1/J + r) * s²)``
    with ``r = n_test / n_train`` (:func:`corrected_t_halfwidth`). ``ratio`` gives ``r`` per task (a mapping,
    e.g. :func:`fold_size_ratios` of manifest.json) or for all tasks (a float); a task without one uses
    ``1 / (J - 1)``, the ratio of one J-fold partition. Out-of-fold metrics (``*_oof``, one row per repeat)
    get ``ci95`` NaN: their interval is the bootstrap's (bootstrap.csv). Rows with no layer (zero-shot) keep
    the plain t interval. ``std`` and ``ci95`` are 0 when a cell has one value and NaN when it has none.
    """
    data = coerce_results(results)
    grouped = data.groupby(KEYS, dropna=False, sort=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    n = out["n"].to_numpy()
    std = np.where(n == 1, 0.0, out["std"].to_numpy(dtype=float))
    probe_rows = out["layer"].notna().to_numpy()
    r = np.array([_ratio_of(ratio, task, k) for task, k in zip(out["task"], n)], dtype=float)
    ci = np.where(probe_rows, corrected_t_halfwidth(std, n, r), corrected_t_halfwidth(std, n, 0.0))
    ci = np.where(n == 1, 0.0, ci)
    ci = np.where(out["metric"].str.endswith("_oof").to_numpy() & probe_rows, np.nan, ci)
    out["std"] = std
    out["ci95"] = np.where(n == 0, np.nan, ci)
    out["n"] = out["n"].astype(int)
    return _sorted(out[SUMMARY_COLUMNS], ["model", "task", "probe", "metric", "layer"])


def corrected_t_halfwidth(std, n, ratio, level: float = 0.95) -> np.ndarray:
    """Half-width of the corrected resampled-t interval (Nadeau & Bengio, 2003; Bouckaert & Frank, 2004).

    ``t(1 - (1-level)/2, J-1) * sqrt((1/J + ratio) * std²)`` for ``J = n`` resampled scores with sample
    standard deviation ``std`` (ddof=1) and ``ratio = n_test / n_train``; ``ratio=0`` gives the plain t
    interval. NaN where ``n < 2``.
    """
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tcrit = stats.t.ppf(1 - (1 - level) / 2, np.maximum(n - 1, 1))
        half = tcrit * np.sqrt((1 / n + np.asarray(ratio, dtype=float)) * np.asarray(std, dtype=float) ** 2)
    return np.where(n >= 2, half, np.nan)


def _ratio_of(ratio: float | Mapping[str, float] | None, task: str, n: int) -> float:
    if isinstance(ratio, Mapping):
        ratio = ratio.get(task)
    if ratio is None or not np.isfinite(ratio):
        return 1 / (n - 1) if n > 1 else np.nan
    return float(ratio)


def run_ratios(run_dir: Path) -> dict[str, float]:
    """:func:`fold_size_ratios` of ``RUN/manifest.json`` ({} when it is missing or unreadable)."""
    try:
        return fold_size_ratios(json.loads((Path(run_dir) / "manifest.json").read_text()))
    except (OSError, ValueError, AttributeError):
        return {}


def fold_size_ratios(manifest: Mapping) -> dict[str, float]:
    """``n_test / n_train`` per task from manifest.json's ``cv`` section (empty for older runs)."""
    out = {}
    for task, info in ((manifest or {}).get("cv") or {}).items():
        value = (info or {}).get("test_train_ratio") if isinstance(info, Mapping) else None
        if isinstance(value, (int, float)) and np.isfinite(value):
            out[task] = float(value)
    return out


def summarize_run(run_dir: Path) -> pd.DataFrame:
    """Summarise ``RUN/results.csv`` into ``RUN/summary.csv`` (atomically, with the test/train ratios of
    ``RUN/manifest.json`` when it has them) and return the summary."""
    run = RunDir(run_dir)
    summary = summarize(read_results(run.path("results.csv")), run_ratios(run.root))
    run.write_csv("summary.csv", summary)
    return summary


def layer_rows(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Summary rows for ``metric`` that belong to a layer (drops zero-shot rows)."""
    return summary[(summary["metric"] == metric) & summary["layer"].notna()]


def num_layers(summary: pd.DataFrame, depths: Mapping[str, int] | None = None) -> pd.Series:
    """Per model: highest layer index seen in any row, plus one.

    ``depths`` (model → number of layers, e.g. manifest.json's ``models[m]["num_layers"]``) wins where
    it is larger, so a run missing its top layers keeps the right relative depth.
    """
    rows = summary[summary["layer"].notna()]
    seen = (rows.groupby("model")["layer"].max().astype(int) + 1).rename("num_layers")
    for model, n in (depths or {}).items():
        if model in seen.index and n and int(n) > seen[model]:
            seen[model] = int(n)
    return seen


def best_layers(
    summary: pd.DataFrame, metric: str = "macro_f1", depths: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """Best layer per (model, task, probe) by mean ``metric``; ties go to the lowest layer.

    ``relative_depth`` is ``layer / (num_layers - 1)``, 0 for single-layer models.
    """
    columns = ["model", "task", "probe", "layer", "mean", "ci95", "n", "num_layers", "relative_depth"]
    rows = layer_rows(summary, metric).dropna(subset=["mean"])
    if rows.empty:
        return pd.DataFrame(columns=columns)
    ranked = rows.sort_values(
        ["model", "task", "probe", "mean", "layer"],
        ascending=[True, True, True, False, True],
        kind="mergesort",
    )
    best = ranked.drop_duplicates(["model", "task", "probe"], keep="first")
    best = best.merge(num_layers(summary, depths), left_on="model", right_index=True, how="left")
    depth = best["layer"].astype(float) / (best["num_layers"] - 1).clip(lower=1)
    best["relative_depth"] = depth.where(best["num_layers"] > 1, 0.0)
    return _sorted(best[columns], ["model", "task", "probe"])


def chance_levels(labels: Sequence[str]) -> dict[str, float]:
    """Chance scores for a label set, in the large-sample limit (class shares ``p_c``, ``k`` classes).

    ``majority_*``: always predicting the most frequent class (Macro-F1 ``2 p_max / (1 + p_max) / k``,
    accuracy ``p_max``). ``uniform_*``: a uniformly random class (per-class F1 ``2 p_c / (k p_c + 1)``;
    ``1/k`` when balanced). ``stratified_*``: a random class drawn with the class shares (per-class
    precision and recall ``p_c``, so Macro-F1 ``1/k`` whatever the shares; accuracy ``sum p_c^2``).
    ``macro_f1`` and ``accuracy`` hold the higher of majority and uniform: the chance line to draw.
    """
    counts = Counter(labels)
    if not counts:
        raise SpeechprobeError("chance levels need at least one label")
    k = len(counts)
    priors = np.array(list(counts.values()), dtype=float) / sum(counts.values())
    p_major = float(priors.max())
    majority_f1 = 2 * p_major / (1 + p_major) / k
    uniform_f1 = float(np.mean(2 * priors / (k * priors + 1)))
    return {
        "num_classes": float(k),
        "majority_macro_f1": majority_f1,
        "majority_accuracy": p_major,
        "uniform_macro_f1": uniform_f1,
        "uniform_accuracy": 1 / k,
        "stratified_macro_f1": 1 / k,
        "stratified_accuracy": float(np.sum(priors**2)),
        "macro_f1": max(majority_f1, uniform_f1),
        "accuracy": max(p_major, 1 / k),
    }


def best_table(
    summary: pd.DataFrame,
    baselines: Sequence[str] | None = None,
    metric: str = "macro_f1",
    depths: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per (model, task) for every non-baseline model and task: best probe and layer,
    its mean ``metric`` and ci95, and each baseline's best score on that task as its own column.

    ``baselines``: None for the model registry's default baselines. Missing pairs appear with empty
    cells; with no non-baseline model, ``model`` is ``<NA>``.
    """
    baselines = default_baselines() if baselines is None else baselines
    best = best_layers(summary, metric, depths)
    best = best.sort_values(
        ["model", "task", "mean", "layer", "probe"],
        ascending=[True, True, False, True, True],
        kind="mergesort",
    ).drop_duplicates(["model", "task"], keep="first")
    is_base = best["model"].isin(list(baselines))
    models = sorted(best.loc[~is_base, "model"].unique()) or [pd.NA]
    tasks = sorted(layer_rows(summary, metric)["task"].unique())
    grid = pd.DataFrame(list(product(models, tasks)), columns=["model", "task"], dtype=object)
    cols = ["model", "task", "probe", "layer", "relative_depth", "mean", "ci95"]
    table = grid.merge(best.loc[~is_base, cols], on=["model", "task"], how="left")
    table = table.rename(columns={"mean": metric})
    for name in baselines:
        scores = best[best["model"] == name].set_index("task")["mean"]
        table[name] = table["task"].map(scores).astype(float)
    table["layer"] = table["layer"].astype("Int64")
    return table.reset_index(drop=True)
