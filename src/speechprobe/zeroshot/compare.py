"""Prompt sensitivity, collapse diagnostics, and the link between zero-shot skill and probe separability.

``sensitivity_table``   per (model, task, mode): how Macro-F1 spreads across prompts (n_prompts, min,
                        max, mean, std with ddof=1 (0 for one prompt), max - min, best and worst prompt),
                        plus ``mode = "all"`` over every (mode, prompt) of the pair.
``diagnostics_table``   per (model, task, mode, prompt): Macro-F1, parse rate and the collapse
                        diagnostics of :mod:`.diagnostics` (``collapsed`` rows are flagged everywhere).
``zeroshot_vs_probe``   per (model, task): the zero-shot score chosen *without test labels* (the first
                        mode of :data:`MODE_PREFERENCE` the pair has, mean Macro-F1 over its prompts;
                        ``selection="default"``) and, labelled ``selection="oracle"``, the best (mode,
                        prompt) on the test labels; against the best-layer Macro-F1 of the primary probe
                        of the same model. Both sides are chance-normalised, ``(s − chance) / (1 − chance)``,
                        so tasks with 2 and 8 classes can share an axis.
``correlations``        Spearman and Pearson of the normalised scores: within each task across models,
                        and pooled over every (model, task) with a percentile bootstrap over *tasks*
                        (whole tasks resampled with replacement, ``n_boot`` draws, seeded). Collapsed pairs
                        are left out (and counted); the oracle selection is reported on its own rows.

Formulas and references: ``docs/statistics.md``. Files (in the run directory):
``zeroshot_sensitivity.csv``, ``zeroshot_diagnostics.csv``, ``zeroshot_vs_probe.csv``,
``zeroshot_correlation.csv`` and ``figures/zeroshot_correlation.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..rundir import RESULT_COLUMNS, sort_results, versions, write_csv, write_json
from .link import correlations, diagnostics_table, plot_zeroshot_vs_probe, zeroshot_vs_probe

SENSITIVITY_COLUMNS = [
    "model",
    "task",
    "mode",
    "n_prompts",
    "min",
    "max",
    "mean",
    "std",
    "range",
    "best_prompt",
    "worst_prompt",
]


def _is_zeroshot(probe: pd.Series) -> pd.Series:
    return probe.astype(str).str.startswith("zeroshot:")


def _means(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over folds of ``metric`` per (model, task, layer, probe)."""
    rows = results[results["metric"] == metric].copy()
    rows["layer"] = pd.to_numeric(rows["layer"].astype("string").replace("", pd.NA), errors="coerce").astype("Int64")
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    return rows.groupby(["model", "task", "layer", "probe"], dropna=False, sort=True)["value"].mean().reset_index()


def sensitivity_table(results: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """The spread of ``metric`` across prompts per (model, task, mode), and over all (mode, prompt)."""
    means = _means(results, metric)
    zs = means[_is_zeroshot(means["probe"])].dropna(subset=["value"]).copy()
    if zs.empty:
        return pd.DataFrame(columns=SENSITIVITY_COLUMNS)
    parts = zs["probe"].str.split(":", n=2, expand=True)
    zs["mode"], zs["prompt"] = parts[1], parts[2]
    out = []
    for (model, task), pair in zs.groupby(["model", "task"], sort=True):
        groups = [(mode, g) for mode, g in pair.groupby("mode", sort=True)] + [
            ("all", pair.assign(prompt=pair["mode"] + ":" + pair["prompt"]))
        ]
        for mode, g in groups:
            v = g["value"].to_numpy(dtype=float)
            best, worst = g.iloc[int(np.argmax(v))]["prompt"], g.iloc[int(np.argmin(v))]["prompt"]
            std = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
            out.append(
                (
                    model,
                    task,
                    mode,
                    len(v),
                    float(v.min()),
                    float(v.max()),
                    float(v.mean()),
                    std,
                    float(v.max() - v.min()),
                    best,
                    worst,
                )
            )
    return pd.DataFrame(out, columns=SENSITIVITY_COLUMNS)


# -- the run directory ----------------------------------------------------------------------------


def read_results_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path, dtype={"model": str, "task": str, "probe": str, "metric": str, "layer": str}, keep_default_na=False
    )
    frame["layer"] = pd.to_numeric(frame["layer"].replace("", pd.NA), errors="coerce").astype("Int64")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame["fold"] = pd.to_numeric(frame["fold"], errors="coerce")
    return frame[RESULT_COLUMNS]


def merge_results(out: Path, zeroshot: pd.DataFrame) -> pd.DataFrame:
    """RUN/results.csv with ``zeroshot`` rows in place of earlier zero-shot rows of the same (model, task)."""
    return _replace_rows(Path(out) / "results.csv", zeroshot)


def _replace_rows(path: Path, new: pd.DataFrame) -> pd.DataFrame:
    """``path`` (a results table) with ``new`` in place of its zero-shot rows of the same (model, task)."""
    frames = [new[RESULT_COLUMNS]]
    if path.is_file():
        old = read_results_csv(path)
        pairs = set(zip(new["model"], new["task"]))
        stale = _is_zeroshot(old["probe"]) & pd.Series(
            [(m, t) in pairs for m, t in zip(old["model"], old["task"])], index=old.index
        )
        frames.insert(0, old[~stale])
    merged = sort_results(pd.concat([f for f in frames if len(f)], ignore_index=True))
    write_csv(path, merged)
    return merged


def restore_zeroshot_rows(out: Path) -> pd.DataFrame | None:
    """Put the zero-shot rows kept in ``RUN/zeroshot/results.csv`` back into ``RUN/results.csv`` (after a
    stage that rewrote it, e.g. ``speechprobe probe RUN``) and refresh the zero-shot tables (summary.csv: see
    :func:`write_zeroshot_outputs`)."""
    out = Path(out)
    kept = out / "zeroshot" / "results.csv"
    if not kept.is_file():
        return None
    rows = read_results_csv(kept)
    manifest = out / "manifest.json"
    state = {}
    if manifest.is_file():
        try:
            state = json.loads(manifest.read_text()).get("zeroshot", {}) or {}
        except ValueError:
            state = {}
    write_zeroshot_outputs(out, rows, state)
    return rows


def _run_facts(manifest: dict, results: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """The run's primary probe and each probed task's chance Macro-F1, from manifest.json."""
    from ..analysis import primary_probe

    probes = results.loc[~_is_zeroshot(results["probe"]) & results["layer"].notna(), "probe"]
    chance = {t: float(c["macro_f1"]) for t, c in (manifest.get("chance") or {}).items() if "macro_f1" in c}
    return primary_probe(manifest.get("config"), probes), chance


def write_zeroshot_outputs(
    out: Path, zeroshot: pd.DataFrame, state: dict[str, Any], n_boot: int = 2000
) -> dict[str, Any]:
    """Merge rows into results.csv (and the zero-shot-only copy ``zeroshot/results.csv``), write the
    sensitivity, diagnostics and probe-link tables, the scatter figure and the manifest's ``zeroshot``
    section. Returns the correlation records. summary.csv is the analysis stage's (a sibling layer): the
    pipeline refreshes it after zero-shot rows change (``pipeline.run_zeroshot_stage``,
    ``analysis.summarize_run``)."""
    out = Path(out)
    _replace_rows(out / "zeroshot" / "results.csv", zeroshot)
    results = merge_results(out, zeroshot)
    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {}
    write_csv(out / "zeroshot_sensitivity.csv", sensitivity_table(results))
    write_csv(out / "zeroshot_diagnostics.csv", diagnostics_table(results))
    primary, chance = _run_facts(manifest, results)
    pairs = zeroshot_vs_probe(results, primary, chance)
    write_csv(out / "zeroshot_vs_probe.csv", pairs)
    corr = correlations(pairs, n_boot=n_boot, seed=int(state.get("config", {}).get("seed", 0) or 0))
    write_csv(out / "zeroshot_correlation.csv", corr)
    figure = plot_zeroshot_vs_probe(pairs, corr, out / "figures" / "zeroshot_correlation.png")
    state = {
        **{k: v for k, v in state.items() if k not in ("correlation", "figure")},
        "correlation": json.loads(corr.to_json(orient="records")),
        "figure": str(figure.relative_to(out)) if figure else None,
    }
    manifest.setdefault("versions", versions())
    manifest.setdefault("seed", state.get("config", {}).get("seed"))
    manifest["zeroshot"] = state
    if figure:
        figs = [f for f in manifest.get("figures", []) if f != state["figure"]]
        manifest["figures"] = [*figs, state["figure"]]
    write_json(manifest_path, manifest)
    return state["correlation"]
