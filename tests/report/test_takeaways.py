"""'What this shows': every claim with its interval, in the verdict the intervals allow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speechprobe.report.headline import HEADLINE_COLUMNS
from speechprobe.report.takeaways import what_this_shows


def _row(task, score, ci, gain, gain_ci, chance=0.25, depth=0.5, kind="model"):
    return dict.fromkeys(HEADLINE_COLUMNS, np.nan) | {
        "model": "m" if kind == "model" else "mfcc",
        "task": task,
        "kind": kind,
        "probe": "knn",
        "relative_depth": depth,
        "score": score,
        "ci95": ci,
        "score_lo": score - ci,
        "score_hi": score + ci,
        "chance": chance,
        "normalised": (score - chance) / (1 - chance),
        "baseline": "mfcc",
        "baseline_score": score - gain,
        "gain": gain,
        "gain_ci95": gain_ci,
    }


def test_each_model_sentence_sorts_tasks_by_what_the_intervals_allow():
    head = pd.DataFrame(
        [
            _row("emotion", 0.80, 0.05, 0.20, 0.05, depth=0.33),
            _row("gender", 0.95, 0.04, 0.01, 0.03, chance=0.5, depth=0.17),
            _row("stress", 0.30, 0.08, 0.05, 0.06, chance=0.25, depth=1.0),
            _row("emotion", 0.60, 0.02, 0.0, 0.0, kind="baseline"),
        ]
    )
    lead, sentence = what_this_shows(head, "knn")
    assert "knn probe" in lead and not lead.lower().startswith("what this shows")  # the heading says it
    assert sentence.startswith("m captures emotion (0.80 ± 0.05 at depth 0.33, +0.20 ± 0.05 over mfcc)")
    assert "is only at baseline level on gender (0.95 ± 0.04 at depth 0.17; mfcc 0.94)" in sentence
    assert "misses stress (0.30 ± 0.08, chance 0.25)" in sentence
    assert sentence.endswith("what it holds peaks between relative depth 0.17 and 0.33.")


def test_no_models_no_paragraph():
    assert what_this_shows(pd.DataFrame([_row("emotion", 0.6, 0.02, 0, 0, kind="baseline")]), "knn") == []
