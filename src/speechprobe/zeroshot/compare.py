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

from ..figures.zeroshot_scatter import plot_zeroshot_vs_probe
from ..rundir import RunDir, is_zeroshot, sort_results, versions
from .link import correlations, decoder_pairs, diagnostics_table, zeroshot_vs_probe

DECODER_CSV = "decoder_layers.csv"  # written by the decoder_layers analysis (analysis/decoder_layers.py)
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


def _means(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over folds of ``metric`` per (model, task, layer, probe)."""
    rows = results[results["metric"] == metric].copy()
    rows["layer"] = pd.to_numeric(rows["layer"].astype("string").replace("", pd.NA), errors="coerce").astype("Int64")
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    return rows.groupby(["model", "task", "layer", "probe"], dropna=False, sort=True)["value"].mean().reset_index()


def sensitivity_table(results: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """The spread of ``metric`` across prompts per (model, task, mode), and over all (mode, prompt)."""
    means = _means(results, metric)
    zs = means[is_zeroshot(means["probe"])].dropna(subset=["value"]).copy()
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


def _run_facts(manifest: dict, results: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """The run's primary probe and each probed task's chance Macro-F1, from manifest.json."""
    from ..analysis import primary_probe

    probes = results.loc[~is_zeroshot(results["probe"]) & results["layer"].notna(), "probe"]
    chance = {t: float(c["macro_f1"]) for t, c in (manifest.get("chance") or {}).items() if "macro_f1" in c}
    return primary_probe(manifest.get("config"), probes), chance


def write_zeroshot_outputs(
    out: Path | RunDir, zeroshot: pd.DataFrame, state: dict[str, Any], n_boot: int = 2000
) -> list:
    """Put the zero-shot rows in results.csv (replacing earlier ones; a zero-shot-only copy goes to
    ``zeroshot/results.csv``), refresh the comparison tables and figure, and the manifest's ``zeroshot``
    section. Returns the correlation records."""
    run_dir = out if isinstance(out, RunDir) else RunDir(out)
    run_dir.write_csv("zeroshot/results.csv", sort_results(zeroshot))
    run_dir.replace_rows("zeroshot", zeroshot)
    return refresh_zeroshot_tables(run_dir, state, n_boot)


def refresh_zeroshot_tables(run_dir: RunDir, state: dict[str, Any] | None = None, n_boot: int = 2000) -> list:
    """Recompute the sensitivity, diagnostics and probe-link tables and the scatter figure from results.csv
    (after either stage wrote its rows), and record them in the manifest's ``zeroshot`` section. summary.csv
    is the analysis stage's (a sibling layer): the pipeline refreshes it (``pipeline.run_zeroshot_stage``)."""
    manifest = run_dir.read_manifest()
    state = dict(manifest.get("zeroshot") or {}) if state is None else dict(state)
    results = run_dir.read_results()
    run_dir.write_csv("zeroshot_sensitivity.csv", sensitivity_table(results))
    run_dir.write_csv("zeroshot_diagnostics.csv", diagnostics_table(results))
    primary, chance = _run_facts(manifest, results)
    pairs = zeroshot_vs_probe(results, primary, chance)
    if run_dir.path(DECODER_CSV).is_file():  # the decoder_layers analysis ran: the decoder sides too
        pairs = pd.concat([pairs, decoder_pairs(pairs, pd.read_csv(run_dir.path(DECODER_CSV)))], ignore_index=True)
    run_dir.write_csv("zeroshot_vs_probe.csv", pairs)
    corr = correlations(pairs, n_boot=n_boot, seed=int(state.get("config", {}).get("seed", 0) or 0))
    run_dir.write_csv("zeroshot_correlation.csv", corr)
    figure = plot_zeroshot_vs_probe(pairs, corr, run_dir.path("figures", "zeroshot_correlation.png"))
    state["correlation"] = json.loads(corr.to_json(orient="records"))
    state["figure"] = str(figure.relative_to(run_dir.root)) if figure else None
    figures = [f for f in manifest.get("figures", []) if f != state["figure"]] + ([state["figure"]] if figure else [])
    defaults = {"versions": versions(), "seed": state.get("config", {}).get("seed")}
    run_dir.update_manifest({"zeroshot": state, "figures": figures}, defaults)
    return state["correlation"]
