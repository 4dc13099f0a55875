"""The selection-aware test of every best layer, and each layer's empirical chance (one analysis).

For every (model, task): :func:`speechprobe.analysis.stats.selection_test` of the primary probe's
layers, with the run's folds and seed. Writes

``permutation.csv`` (:data:`PERMUTATION_COLUMNS`), one row per (model, task): the selected best layer,
    its observed score (the maximum over layers), the null distribution of the shuffled maxima (mean,
    std, 95th percentile), ``p_value`` = (1 + #{null max ≥ observed max}) / (1 + B) (Besag–Clifford's
    ``h / l`` when a refitted probe stopped early), and ``q_value``: Benjamini–Hochberg over every
    (model, task) test of the run.
``chance.csv`` (:data:`CHANCE_COLUMNS`), one row per (model, task, layer): the score, the empirical
    chance (mean score of the shuffles), ``above_chance = score − chance``, the layer's own p-value and
    its Holm adjustment across the layers.

Both name their unit (``unit``: clip, or the group noun, e.g. speaker; ``n_units``); ``permutation.csv``
adds ``exact`` (every distinct labelling scored), ``min_p`` (the smallest p the test can give) and ``note``
(why ``p_value`` is empty: too few units per class, :mod:`.units`). Without a p, ``p_layer`` and ``p_holm``
are empty too; the chance level is still the mean over the shuffles.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .contract import Analysis, AnalysisResult, AnalysisSettings, Unit
from .curves import LAYER_SCORE_COLUMNS, relative_depth
from .stats import SEQUENTIAL_H, SelectionTest, add_q_values, chance_table, selection_test
from .units import group_noun

log = logging.getLogger("speechprobe")

PERMUTATION_COLUMNS = [
    "model",
    "task",
    "probe",
    "metric",
    "selection",
    "layer",
    "num_layers",
    "relative_depth",
    "observed",
    "null_mean",
    "null_std",
    "null_q95",
    "n_permutations",
    "max_permutations",
    "sequential",
    "p_value",
    "q_value",
    "scheme",
    "n_folds",
    "seed",
    "grouped",
    "unit",
    "n_units",
    "exact",
    "min_p",
    "note",
]
UNIT_COLUMNS = ("unit", "n_units", "exact", "min_p", "note")  # added with the unit of inference; older runs lack them
CHANCE_COLUMNS = [
    *LAYER_SCORE_COLUMNS,
    "chance",
    "above_chance",
    "p_layer",
    "p_holm",
    "n_permutations",
    "scheme",
    "unit",
]
PERMUTATION_TEXT = (
    "Selection-aware permutation test of the best layer (primary probe): every restricted label shuffle "
    "re-runs the selection (the maximum over layers of the mean Macro-F1 over the same folds), and "
    "p = (1 + #shuffled maxima ≥ observed maximum) / (1 + #shuffles). Shuffles are restricted: within each "
    "test fold when folds are not grouped; within each group when labels vary inside groups; whole groups "
    "(exchangeable) swap labels when each group carries one label, every distinct labelling enumerated when there are "
    "no more than the shuffles asked for (exact). min_p: the smallest p the test can give; unit, n_units: what was "
    "exchanged; a class with fewer than 5 units gets no p (note says why). q: Benjamini–Hochberg across every "
    "(model, task) test of the run. sequential: the probe was refitted per shuffle and stopped early by "
    "Besag–Clifford's rule."
)
CHANCE_TEXT = (
    "Empirical chance per layer: the mean Macro-F1 of the same probe on the same folds over the restricted "
    "label shuffles of the permutation test; above_chance = score − chance. p_layer: that layer tested "
    "alone; p_holm: Holm-adjusted across the layers of the model (a layer's own claim, not the best layer's)."
)


def _options(settings: AnalysisSettings) -> dict:
    own = dict(settings.options.get("selection", {}))
    return {
        "n_permutations": settings.n_permutations,
        "probe": settings.primary_probe,
        "sequential_h": int(own.get("sequential_h", SEQUENTIAL_H)),
    }


def _run_test(unit: Unit, options: dict) -> SelectionTest:
    settings = unit.settings
    bar = tqdm(
        total=settings.n_permutations,
        desc=f"permutations {unit.name}",
        unit="shuffle",
        leave=False,
        disable=not settings.progress,
    )
    with bar:
        return selection_test(
            unit.features(),
            unit.labels,
            unit.groups,
            (options["probe"],),
            settings.n_permutations,
            seed=settings.seed,
            folds=unit.folds,
            settings=unit.probe_settings,
            sequential_h=options["sequential_h"],
            device=settings.device if settings.device not in (None, "cpu") else None,
            n_jobs=settings.n_jobs,
            progress=bar.update,
            group_noun=group_noun(unit.run_dir, unit.task) or "group",
        )


def _permutation_row(unit: Unit, test: SelectionTest) -> dict:
    _, layer = test.best
    n_layers = test.observed.shape[1]
    null_max = test.null_max
    return {
        "model": unit.model,
        "task": unit.task,
        "probe": test.probes[test.best[0]],
        "metric": "macro_f1",
        "selection": f"max over {n_layers} layer(s)",
        "layer": layer,
        "num_layers": n_layers,
        "relative_depth": float(relative_depth(layer, n_layers)),
        "observed": test.observed_max,
        "null_mean": float(null_max.mean()),
        "null_std": float(null_max.std(ddof=1)) if len(null_max) > 1 else 0.0,
        "null_q95": float(np.quantile(null_max, 0.95)),
        "n_permutations": test.n_permutations,
        "max_permutations": test.max_permutations,
        "sequential": test.sequential,
        "p_value": test.p_value,
        "q_value": np.nan,
        "scheme": test.scheme,
        "n_folds": len(unit.folds),
        "seed": unit.settings.seed,
        "grouped": unit.groups is not None,
        "unit": test.unit,
        "n_units": test.n_units,
        "exact": test.exact,
        "min_p": test.min_p,
        "note": test.note,
    }


def compute(unit: Unit) -> AnalysisResult:
    """The selection-aware test and per-layer chance of the unit's primary probe."""
    test = _run_test(unit, _options(unit.settings))
    row = _permutation_row(unit, test)
    notes = []
    reported, _ = unit.best_layer()
    if reported != row["layer"]:
        notes.append(
            f"{unit.name}: the best {row['probe']} layer recomputed from the features is {row['layer']}, "
            f"results.csv says {reported}; the test is of layer {row['layer']}"
        )
    stored = float(unit.best.loc[unit.best["model"] == unit.model, "mean"].iloc[0])
    if abs(test.observed[0, reported] - stored) > 1e-9:  # another metric definition or other folds
        notes.append(
            f"{unit.name}: layer {reported} scores {test.observed[0, reported]:.6f} when re-scored for the test, "
            f"{stored:.6f} in results.csv"
        )
    if test.note:
        log.info("selection-aware test %s: best layer %d, no p-value: %s", unit.name, row["layer"], test.note)
    else:
        log.info("selection-aware test %s: best layer %d, p = %.3g", unit.name, row["layer"], test.p_value)
    layers = chance_table(test)
    layers.insert(0, "probe", row["probe"])
    layers.insert(0, "task", unit.task)
    layers.insert(0, "model", unit.model)
    layers["relative_depth"] = relative_depth(layers["layer"].to_numpy(int), row["num_layers"])
    layers["n_permutations"] = test.n_permutations
    layers["scheme"] = test.scheme
    layers["unit"] = test.unit
    return AnalysisResult(
        tables={"permutation.csv": pd.DataFrame([row]), "chance.csv": layers[CHANCE_COLUMNS]}, notes=notes
    )


def finalise(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Benjamini–Hochberg q-values across every (model, task) test of the run."""
    frame = tables.get("permutation.csv")
    if frame is None or frame.empty:
        return tables
    return {**tables, "permutation.csv": add_q_values(frame)}


ANALYSIS = Analysis.of(
    __name__,
    {"permutation.csv": PERMUTATION_COLUMNS, "chance.csv": CHANCE_COLUMNS},
    scope="model_task",
    flag="permutations",
    cost="seconds for knn; a refit per shuffle for mlp and linear",
    enabled=lambda s: s.n_permutations > 0,
)
