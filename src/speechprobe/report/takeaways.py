""" "What this shows": the study's pattern in a few plain sentences, for the console and the report's
first screen.

Per model, which tasks it *captures* (above chance by the selection-aware test when
it ran, else beyond the 95 % interval, and above the best hand-crafted baseline beyond the interval of
the paired gain), which it reaches only at *baseline level*, and which it *misses* (not above chance),
each with its best layer's score ± 95 % interval and relative depth. (In the synthetic suite each task
is one controlled cue, so a task captured is a cue captured.) Every claim is the primary probe's
and holds under the interval printed beside it (:func:`speechprobe.report.headline.verdict`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .headline import verdict


def _pm(r) -> str:
    ci = f" ± {r.ci95:.2f}" if np.isfinite(r.ci95) else ""
    return f"{r.score:.2f}{ci}"


def _item(r, what: str) -> str:
    depth = f"depth {r.relative_depth:.2f}"
    if what == "captured":
        gain = f"{r.gain:+.2f} ± {r.gain_ci95:.2f} over {r.baseline}"
        return f"{r.task} ({_pm(r)} at {depth}, {gain})"
    if what == "baseline-level":
        base = f"; {r.baseline} {r.baseline_score:.2f}" if isinstance(r.baseline, str) else ""
        return f"{r.task} ({_pm(r)} at {depth}{base})"
    return f"{r.task} ({_pm(r)}, chance {r.chance:.2f})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def model_sentence(model: str, rows: pd.DataFrame) -> str:
    """One sentence: what ``model`` captures, reaches at baseline level and misses, and where in depth."""
    groups: dict[str, list] = {"captured": [], "baseline-level": [], "missed": [], "undetermined": []}
    for r in rows.sort_values("normalised", ascending=False).itertuples(index=False):
        groups[verdict(r)].append(r)
    parts = []
    if groups["captured"]:
        parts.append("captures " + _join([_item(r, "captured") for r in groups["captured"]]))
    if groups["baseline-level"]:
        parts.append(
            "is only at baseline level on " + _join([_item(r, "baseline-level") for r in groups["baseline-level"]])
        )
    if groups["missed"]:
        parts.append("misses " + _join([_item(r, "missed") for r in groups["missed"]]))
    if groups["undetermined"]:
        parts.append("has no chance level for " + _join([r.task for r in groups["undetermined"]]))
    sentence = f"{model} " + "; it ".join(parts)
    found = groups["captured"] + groups["baseline-level"]
    if found:
        depths = [float(r.relative_depth) for r in found]
        lo, hi = min(depths), max(depths)
        span = f"at relative depth {lo:.2f}" if np.isclose(lo, hi) else f"between relative depth {lo:.2f} and {hi:.2f}"
        sentence += f"; what it holds peaks {span}"
    return sentence + "."


def what_this_shows(headline: pd.DataFrame, primary: str) -> list[str]:
    """The paragraph's sentences: a lead naming the probe and intervals, then one sentence per model."""
    models = headline[headline["kind"] == "model"]
    if models.empty:
        return []
    lead = (  # under the heading "What this shows", so it does not repeat it
        f"Best layer of the {primary} probe; Macro-F1 ± 95 % interval; 'captures' = above chance and above the "
        "best hand-crafted baseline beyond their intervals."
    )
    return [lead, *(model_sentence(m, rows) for m, rows in models.groupby("model", sort=True))]


__all__ = ["model_sentence", "what_this_shows"]
