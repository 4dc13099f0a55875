"""'What this shows': every claim with its interval, in the verdict the intervals allow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speechprobe.report.headline import HEADLINE_COLUMNS
from speechprobe.report.takeaways import FIRST_SCREEN, what_this_shows


def _row(task, score, ci, gain, gain_ci, chance=0.25, depth=0.5, kind="model", model="m"):
    return dict.fromkeys(HEADLINE_COLUMNS, np.nan) | {
        "model": model if kind == "model" else "mfcc",
        "task": task,
        "kind": kind,
        "probe": "knn",
        "layer": round(depth * 6),
        "num_layers": 7,
        "relative_depth": depth,
        "score": score,
        "ci95": ci,
        "score_lo": score - ci,
        "score_hi": score + ci,
        "chance": chance,
        "normalised": (score - chance) / (1 - chance),
        "normalised_lo": (score - ci - chance) / (1 - chance),
        "normalised_hi": (score + ci - chance) / (1 - chance),
        "baseline": "mfcc",
        "baseline_score": score - gain,
        "gain": gain,
        "gain_ci95": gain_ci,
    }


def test_tasks_are_ranked_by_effect_size_with_their_verdicts_and_intervals():
    head = pd.DataFrame(
        [
            _row("emotion", 0.80, 0.05, 0.20, 0.05, depth=1 / 3),
            _row("emotion", 0.70, 0.06, 0.10, 0.05, depth=0.5, model="small"),
            _row("gender", 0.95, 0.04, 0.01, 0.03, chance=0.5, depth=1 / 6),
            _row("stress", 0.30, 0.08, 0.05, 0.06, chance=0.25, depth=1.0),
            _row("emotion", 0.60, 0.02, 0.0, 0.0, kind="baseline"),
        ]
    )
    lead, *sentences = what_this_shows(head, "knn")
    assert "knn probe" in lead and "effect size" in lead and not lead.lower().startswith("what this shows")
    # normalised: gender (0.95 - 0.5) / 0.5 = 0.90, emotion (0.80 - 0.25) / 0.75 = 0.73, stress 0.07
    assert [s.split(":")[0] for s in sentences] == ["Gender", "Emotion", "Stress"]
    assert sentences[0] == (
        "Gender: only at baseline level; m layer 1 of 0–6 (depth 0.17), Macro-F1 0.95 ± 0.04, normalised 0.90 "
        "[0.82, 0.98] (chance 0.50), +0.01 ± 0.03 over mfcc (0.94)."
    )
    assert sentences[1].startswith("Emotion: captured; m layer 2 of 0–6 (depth 0.33), Macro-F1 0.80 ± 0.05, ")
    assert sentences[1].endswith("+0.20 ± 0.05 over mfcc (0.60); small 0.70 ± 0.06 at depth 0.50.")
    assert sentences[2].startswith("Stress: missed (not above chance); m layer 6 of 0–6")


def test_the_first_screen_holds_at_most_ten_sentences_ordered_by_effect_size():
    rng = np.random.default_rng(0)
    rows = [_row(f"task{k}", s, 0.05, 0.1, 0.05) for k, s in enumerate(rng.uniform(0.3, 0.95, 14))]
    shapes = pd.DataFrame({"model": ["m"] * 3, "task": ["task0", "task1", "task2"], "probe": ["knn"] * 3})
    shapes["shape"] = ["peaked", "peaked", "rising"]
    sentences = what_this_shows(pd.DataFrame(rows), "knn", shapes)
    assert len(sentences) == FIRST_SCREEN
    tasks = [s.split(":")[0].lower() for s in sentences[1:-2]]
    scores = {r["task"]: r["normalised"] for r in rows}
    assert [scores[t] for t in tasks] == sorted(scores.values(), reverse=True)[: len(tasks)]
    hidden = sorted(scores, key=scores.get, reverse=True)[len(tasks) :]
    assert sentences[-2] == f"{len(hidden)} more tasks, weaker, are in the findings table: {', '.join(hidden)}."
    shape = "Over depth, of 3 layer curves of the models: 2 peaked, 1 rising (shapes not tested for selection)."
    assert sentences[-1] == shape


def test_no_models_no_paragraph():
    assert what_this_shows(pd.DataFrame([_row("emotion", 0.6, 0.02, 0, 0, kind="baseline")]), "knn") == []


def test_a_task_without_a_chance_level_is_ranked_last_without_a_normalised_score():
    head = pd.DataFrame([_row("emotion", 0.8, 0.05, 0.2, 0.05), _row("other", 0.9, 0.05, 0.2, 0.05, chance=np.nan)])
    _, first, last = what_this_shows(head, "knn")
    assert first.startswith("Emotion: captured;") and "normalised 0.73 [" in first
    assert last.startswith("Other: no chance level known;") and "normalised" not in last and "nan" not in last
