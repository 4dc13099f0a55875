""" "What this shows": the study's answers in at most :data:`FIRST_SCREEN` sentences, for the console and the
report's first screen.

One sentence per task, ranked by effect size: the best model's chance-normalised score
``(s − c) / (1 − c)`` (0 = chance, 1 = perfect; :func:`speechprobe.report.headline.normalise`) with its 95 %
interval. Each names the verdict (:func:`speechprobe.report.headline.verdict`: *captured* = above chance and
above the best hand-crafted baseline beyond the interval of the paired gain; *baseline level*; *missed*), which
layer of which model holds it (and at what relative depth), the gain over the best baseline ± its interval,
and the other models' scores. Then, when the run has them, one sentence on the shape of the layer curves
(not tested for selection) and one on zero-shot skill against the probes. Every number is the headline's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .headline import verdict
from .text import task_start

FIRST_SCREEN = 10  # sentences at most on the first screen, the lead included
VERDICT_WORDS = {
    "captured": "captured",
    "baseline-level": "only at baseline level",
    "missed": "missed (not above chance)",
    "undetermined": "no chance level known",
}


def _pm(score: float, ci: float, sign: str = "") -> str:
    """``0.81 ± 0.05`` (``sign="+"``: ``+0.21 ± 0.05``); the value alone when the interval is unknown."""
    value = f"{score:{sign}.2f}"
    return f"{value} ± {ci:.2f}" if np.isfinite(ci) else value


def _interval(lo: float, hi: float) -> str:
    return f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""


def task_sentence(rows: pd.DataFrame) -> str:
    """One task: verdict, best model and layer, effect size with its interval, gain over the best baseline,
    then the other models (``rows``: the task's headline rows of models, the best first)."""
    top, *rest = rows.itertuples(index=False)
    where = f"{top.model} layer {top.layer} of 0–{top.num_layers - 1} (depth {top.relative_depth:.2f})"
    sentence = f"{task_start(top.task)}: {VERDICT_WORDS[verdict(top)]}; {where}, Macro-F1 {_pm(top.score, top.ci95)}"
    if np.isfinite(top.normalised):
        span = _interval(top.normalised_lo, top.normalised_hi)
        sentence += f", normalised {top.normalised:.2f}{span} (chance {top.chance:.2f})"
    if isinstance(top.baseline, str) and np.isfinite(top.gain):
        sentence += f", {_pm(top.gain, top.gain_ci95, '+')} over {top.baseline} ({top.baseline_score:.2f})"
    if rest:
        sentence += "; " + ", ".join(f"{r.model} {_pm(r.score, r.ci95)} at depth {r.relative_depth:.2f}" for r in rest)
    return sentence + "."


def ranked_tasks(headline: pd.DataFrame) -> list[pd.DataFrame]:
    """The models' headline rows per task, each task's best model first, tasks by that model's normalised
    score, highest first (tasks without one last)."""
    models = headline[headline["kind"] == "model"]
    groups = [rows.sort_values("normalised", ascending=False) for _, rows in models.groupby("task", sort=True)]
    return sorted(groups, key=lambda g: -g["normalised"].iloc[0] if np.isfinite(g["normalised"].iloc[0]) else np.inf)


def shape_sentence(shapes: pd.DataFrame | None, primary: str, models: set[str]) -> str:
    """How the models' layer curves (primary probe) bend over depth, as counts of the claimed shapes."""
    if shapes is None or shapes.empty:
        return ""
    own = shapes[(shapes["probe"] == primary) & shapes["model"].isin(models)]
    own = own[own["shape"] != "too few layers"]
    if own.empty:
        return ""
    counts = own["shape"].value_counts()
    listed = ", ".join(f"{n} {shape}" for shape, n in counts.items())
    return f"Over depth, of {len(own)} layer curves of the models: {listed} (shapes not tested for selection)."


def zeroshot_sentence(correlation: pd.DataFrame | None) -> str:
    """Zero-shot skill against the probes' best layers: the pooled Spearman ρ with its bootstrap interval."""
    if correlation is None or correlation.empty:
        return ""
    rows = correlation[(correlation["scope"] == "pooled") & (correlation["method"] == "spearman")]
    rows = rows[rows["selection"] == "default"]
    if rows.empty or not np.isfinite(float(rows["r"].iloc[0])):
        return ""
    r = rows.iloc[0]
    return (
        f"Zero-shot vs representation: chance-normalised zero-shot skill and best-layer probe score correlate with "
        f"Spearman ρ = {float(r['r']):.2f} [{float(r['ci_low']):.2f}, {float(r['ci_high']):.2f}] over "
        f"{int(r['n_pairs'])} (model, task) pairs."
    )


def what_this_shows(
    headline: pd.DataFrame,
    primary: str,
    shapes: pd.DataFrame | None = None,
    zeroshot: pd.DataFrame | None = None,
) -> list[str]:
    """The first screen: a lead, the tasks ranked by effect size, the curve shapes and zero-shot; at most
    :data:`FIRST_SCREEN` sentences (tasks beyond them are named in one closing sentence)."""
    models = headline[headline["kind"] == "model"]
    if models.empty:
        return []
    lead = (  # under the heading "What this shows", so it does not repeat it
        f"Tasks ranked by effect size: the best model's chance-normalised Macro-F1 (0 = chance, 1 = perfect) "
        f"[95 % interval], at the best layer of the {primary} probe; Macro-F1 ± 95 % interval; 'captured' = above "
        "chance and above the best hand-crafted baseline beyond the interval of their paired gain."
    )
    extra = [s for s in (shape_sentence(shapes, primary, set(models["model"])), zeroshot_sentence(zeroshot)) if s]
    tasks = ranked_tasks(headline)
    room = FIRST_SCREEN - 1 - len(extra)
    shown, hidden = (tasks, []) if len(tasks) <= room else (tasks[: room - 1], tasks[room - 1 :])
    sentences = [lead, *(task_sentence(rows) for rows in shown)]
    if hidden:
        names = ", ".join(str(g["task"].iloc[0]) for g in hidden)
        sentences.append(f"{len(hidden)} more tasks, weaker, are in the findings table: {names}.")
    return [*sentences, *extra]


__all__ = ["FIRST_SCREEN", "ranked_tasks", "shape_sentence", "task_sentence", "what_this_shows", "zeroshot_sentence"]
