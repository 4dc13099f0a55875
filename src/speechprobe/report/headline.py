"""The study's headline numbers: best-layer Macro-F1 per model and task on a chance-normalised scale,
with the gain over the best hand-crafted baseline and their uncertainty.

Tasks have different chance levels (2 classes: 0.5; 5 classes: 0.2), so raw Macro-F1 cannot share one
colour scale. The headline scale is

    n(s) = (s − c) / (1 − c)

with ``c`` the task's chance Macro-F1 (the higher of majority-class and uniform guessing, from
manifest.json): 0 is chance, 1 a perfect score, below 0 worse than chance. It is a linear map of the
score, so the score's 95 % interval maps onto the same interval of ``n``. The score is the primary
probe's best layer (:mod:`speechprobe.analysis.primary`); the gain is that score minus the best
baseline's at the same probe, with the interval of the per-fold paired differences
(:func:`speechprobe.analysis.curves.baseline_gain`). Baselines get rows of their own, so the figure
shows what hand-crafted features reach on each task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..analysis.summary import best_layers
from ..analysis.uncertainty import best_uncertainty

NORMALISED_RANGE = (-0.25, 1.0)  # the headline colour scale: a quarter below chance up to a perfect score

HEADLINE_COLUMNS = [
    "model",
    "task",
    "kind",  # model | baseline
    "probe",
    "layer",
    "num_layers",
    "relative_depth",
    "score",
    "ci95",
    "score_lo",
    "score_hi",
    "n_folds",
    "chance",
    "normalised",
    "normalised_lo",
    "normalised_hi",
    "baseline",
    "baseline_score",
    "gain",
    "gain_ci95",
    "p_value",  # the selection-aware permutation test of the best layer (NaN when not run)
    "oof",  # out-of-fold Macro-F1 at the best layer, with its spread over a bootstrap of the unit (bootstrap.csv)
    "oof_lo",
    "oof_hi",
    "p_best",  # share of bootstrap resamples in which this layer is the probe's best
    "best_layer_distribution",
]


def normalise(score, chance):
    """``(score − chance) / (1 − chance)``: 0 at chance, 1 at a perfect score (NaN where chance is unknown
    or 1)."""
    score, chance = np.asarray(score, dtype=float), np.asarray(chance, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(chance < 1, (score - chance) / (1 - chance), np.nan)


def headline_table(
    summary: pd.DataFrame,
    gains: pd.DataFrame,
    chance: Mapping[str, float],
    primary: str,
    baselines: Sequence[str],
    depths: Mapping[str, int] | None = None,
    tests: pd.DataFrame | None = None,
    boot: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (model, task) of the primary probe's best layer, models first, then the baselines.

    ``gains``: :func:`~speechprobe.analysis.curves.baseline_gain` at the primary probe (the gain and its
    interval); ``chance``: task → chance Macro-F1; ``tests``: permutation.csv rows (``p_value`` of the
    selection-aware test); ``boot``: bootstrap.csv (the out-of-fold score, its interval and the best-layer
    distribution over resamples). The score's interval is clipped to [0, 1] (a Macro-F1 cannot leave it; the t
    interval can), and the normalised interval follows it.
    """
    # Over 60 lines because each row spells out the 26 headline columns and the docstring defines every input.
    best = best_layers(summary, "macro_f1", depths)
    best = best[best["probe"] == primary]
    if best.empty:
        return pd.DataFrame(columns=HEADLINE_COLUMNS)
    gain_of = gains.set_index(["model", "task"]) if not gains.empty else pd.DataFrame()
    p_of: dict = {}
    if tests is not None and not tests.empty:
        tested = tests[tests["probe"] == primary]
        p_of = {(m, t): float(p) for m, t, p in zip(tested["model"], tested["task"], tested["p_value"])}
    rows = []
    for r in best.itertuples(index=False):
        ci = float(r.ci95) if pd.notna(r.ci95) else np.nan
        lo, hi = (max(0.0, r.mean - ci), min(1.0, r.mean + ci)) if np.isfinite(ci) else (np.nan, np.nan)
        c = float(chance.get(r.task, np.nan))
        g = gain_of.loc[(r.model, r.task)] if (r.model, r.task) in gain_of.index else None
        facts = best_uncertainty(boot, r.model, r.task, r.probe, r.layer)
        rows.append(
            {
                "model": r.model,
                "task": r.task,
                "kind": "baseline" if r.model in baselines or int(r.num_layers) == 1 else "model",
                "probe": r.probe,
                "layer": int(r.layer),
                "num_layers": int(r.num_layers),
                "relative_depth": float(r.relative_depth),
                "score": float(r.mean),
                "ci95": ci,
                "score_lo": lo,
                "score_hi": hi,
                "n_folds": int(r.n),
                "chance": c,
                "normalised": float(normalise(r.mean, c)),
                "normalised_lo": float(normalise(lo, c)),
                "normalised_hi": float(normalise(hi, c)),
                "baseline": g["baseline"] if g is not None else pd.NA,
                "baseline_score": float(g["baseline_score"]) if g is not None else np.nan,
                "gain": float(g["gain"]) if g is not None else np.nan,
                "gain_ci95": float(g["gain_ci95"]) if g is not None else np.nan,
                "p_value": p_of.get((r.model, r.task), np.nan),
                "oof": facts["macro_f1_oof"],
                "oof_lo": facts["oof_ci_low"],
                "oof_hi": facts["oof_ci_high"],
                "p_best": facts["p_best"],
                "best_layer_distribution": facts["best_layer_distribution"],
            }
        )
    frame = pd.DataFrame(rows, columns=HEADLINE_COLUMNS)
    order = {"model": 0, "baseline": 1}
    frame = frame.sort_values(["kind", "model", "task"], key=lambda s: s.map(order) if s.name == "kind" else s)
    return frame.reset_index(drop=True)


ALPHA = 0.05


def above_chance(row) -> bool | None:
    """Whether a headline row is above chance: by the selection-aware permutation test when it ran
    (``p ≤ 0.05``), else by the lower end of the score's 95 % interval; None when neither is known."""
    if np.isfinite(row.p_value):
        return bool(row.p_value <= ALPHA)
    if not (np.isfinite(row.chance) and np.isfinite(row.score_lo)):
        return None
    return bool(row.score_lo > row.chance)


def verdict(row) -> str:
    """What a headline row says, as one word: ``captured`` (above chance, and above the best baseline
    beyond the 95 % interval of the paired gain), ``baseline-level`` (above chance, not clearly above the
    best baseline, or no interval for the gain), ``missed`` (not above chance) or ``undetermined`` (no
    chance level and no test)."""
    above = above_chance(row)
    if above is None:
        return "undetermined"
    if not above:
        return "missed"
    if np.isfinite(row.gain) and np.isfinite(row.gain_ci95) and row.gain - row.gain_ci95 > 0:
        return "captured"
    return "baseline-level"


__all__ = ["HEADLINE_COLUMNS", "above_chance", "headline_table", "normalise", "verdict"]
