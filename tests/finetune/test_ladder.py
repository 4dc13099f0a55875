"""The ladder's sentences, read from ladder.csv (docs/finetune.md)."""

import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis.intervals import fold_interval
from speechprobe.analysis.ladder import COLUMNS, LADDER_CSV, findings, paired, score_interval

NAN = float("nan")


def test_findings_give_gains_with_intervals_zero_shot_against_chance_and_the_control(tmp_path):
    rows = [
        ["m", "emotion", 0, "zero-shot", "likelihood_bc", 0, 0.21, NAN, NAN, 0.25, *[NAN] * 9],
        ["m", "emotion", 1, "best frozen layer", "knn layer 4", 5, 0.45, 0.38, 0.52, 0.25, *[NAN] * 9],
        ["m", "emotion", 2, "head", "ft-head", 5, 0.50, 0.40, 0.60, 0.25, 0.05, -0.02, 0.12, 0.05, -0.02, 0.12]
        + [3, 0.41, 7],  # read mostly from layer 3
        ["m", "emotion", 3, "fine-tuned", "ft-lora", 5, 0.66, 0.55, 0.77, 0.25, 0.16, 0.05, 0.27, 0.21, 0.09, 0.33]
        + [6, 1.0, 1],  # read from the last layer only (--ft-layers last): no "read mostly from"
        ["m", "emotion", 4, "shuffled control", "ft-lora-shuffled", 5, 0.24, 0.15, 0.33, 0.25, *[NAN] * 9],
    ]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / LADDER_CSV, index=False)
    (sentence,) = findings(tmp_path)
    assert sentence == (
        "On emotion (m): head (ft-head, read mostly from layer 3: weight 0.41, uniform 0.14) differs (interval "
        "includes 0) by +0.05 [-0.02, 0.12]; fine-tuned (ft-lora) "
        "adds +0.21 [0.09, 0.33] over the best frozen layer (knn layer 4, 0.45 [0.38, 0.52]); zero-shot is at or "
        "below chance (0.21, chance 0.25; one evaluation, no interval); the shuffled-label control scores 0.24 "
        "[0.15, 0.33] (chance 0.25)."
    )
    assert findings(tmp_path / "elsewhere") == []


def test_a_rungs_interval_stays_in_macro_f1s_range_and_a_gains_may_go_below_zero():
    """Three spread folds: the raw corrected interval runs past 0 and 1; the rung's is clipped to [0, 1], the
    paired gain (a difference of scores) keeps its negative end and stays in [-1, 1]."""
    scores = pd.Series([0.05, 0.40, 0.65])
    raw = fold_interval(scores.to_numpy(), 0.25)
    assert raw[1] < 0 and raw[2] > 1
    mean, low, high = score_interval(scores, 0.25)
    assert mean == pytest.approx(0.3667, abs=1e-4) and (low, high) == (0.0, 1.0)
    gain, g_low, g_high = paired(scores, pd.Series([0.30, 0.35, 0.40]), 0.25)
    assert gain == pytest.approx(0.0167, abs=1e-4) and -1 < g_low < -0.5 and 0.5 < g_high < 1
    assert np.isnan(paired(scores, 0.3, 0.5)[0])  # a one-evaluation rung (zero-shot): no paired interval
