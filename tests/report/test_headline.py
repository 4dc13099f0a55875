"""The headline numbers: chance-normalised best-layer scores, gains and their verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis.curves import baseline_gain
from speechprobe.analysis.summary import summarize
from speechprobe.report.headline import headline_table, normalise, verdict


def _results(model_scores: dict[str, list[list[float]]], task: str = "t") -> pd.DataFrame:
    """results.csv rows: per model, a list of layers, each a list of fold scores (knn, macro_f1)."""
    rows = []
    for model, layers in model_scores.items():
        for layer, folds in enumerate(layers):
            for fold, v in enumerate(folds):
                rows.append((model, task, layer, "knn", fold, "macro_f1", v))
    return pd.DataFrame(rows, columns=["model", "task", "layer", "probe", "fold", "metric", "value"])


def _headline(results: pd.DataFrame, chance: float, tests: pd.DataFrame | None = None) -> pd.DataFrame:
    summary = summarize(results)
    gains = baseline_gain(summary, ["mfcc"], "macro_f1", results, None, "knn")
    return headline_table(summary, gains, {"t": chance}, "knn", ["mfcc"], None, tests)


def test_normalise_maps_chance_to_zero_and_perfect_to_one():
    assert normalise(0.25, 0.25) == 0.0
    assert normalise(1.0, 0.25) == 1.0
    assert normalise(0.625, 0.25) == pytest.approx(0.5)
    assert normalise(0.1, 0.25) == pytest.approx(-0.2)
    assert np.isnan(normalise(0.5, float("nan")))


def test_headline_takes_the_primary_best_layer_and_clips_its_interval():
    results = _results(
        {
            "m": [[0.30, 0.32, 0.31, 0.29, 0.30], [0.97, 0.99, 1.0, 0.95, 1.0]],
            "mfcc": [[0.50, 0.52, 0.49, 0.51, 0.50]],
        }
    )
    head = _headline(results, 0.5)
    model = head[head["model"] == "m"].iloc[0]
    assert model["kind"] == "model" and model["layer"] == 1
    assert model["score"] == pytest.approx(0.982)
    assert model["score_hi"] == 1.0  # the t interval crosses 1; a Macro-F1 cannot
    assert model["normalised"] == pytest.approx((0.982 - 0.5) / 0.5)
    assert model["normalised_hi"] == pytest.approx(1.0)
    assert model["baseline"] == "mfcc" and model["gain"] == pytest.approx(0.982 - 0.504)
    assert list(head["kind"]) == ["model", "baseline"]


@pytest.mark.parametrize(
    ("model_folds", "p", "expected"),
    [
        ([0.80, 0.82, 0.79, 0.81, 0.80], np.nan, "captured"),  # far above chance and the baseline
        ([0.52, 0.50, 0.49, 0.53, 0.51], np.nan, "baseline-level"),  # above chance, level with the baseline
        ([0.26, 0.20, 0.31, 0.24, 0.22], np.nan, "missed"),  # interval reaches chance
        ([0.80, 0.82, 0.79, 0.81, 0.80], 0.2, "missed"),  # the permutation test, when run, decides
    ],
)
def test_verdict_holds_under_the_intervals(model_folds, p, expected):
    results = _results({"m": [[0.1] * 5, model_folds], "mfcc": [[0.50, 0.52, 0.49, 0.51, 0.50]]})
    tests = pd.DataFrame({"model": ["m"], "task": ["t"], "probe": ["knn"], "p_value": [p]})
    row = _headline(results, 0.25, tests).iloc[0]
    assert row["model"] == "m" and row["layer"] == 1
    assert verdict(row) == expected
