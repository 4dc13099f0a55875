"""The ladder's sentences, read from ladder.csv (docs/finetune.md)."""

import pandas as pd

from speechprobe.analysis.ladder import COLUMNS, LADDER_CSV, findings

NAN = float("nan")


def test_findings_give_gains_with_intervals_zero_shot_against_chance_and_the_control(tmp_path):
    rows = [
        ["m", "emotion", 0, "zero-shot", "likelihood_bc", 0, 0.21, NAN, NAN, 0.25, NAN, NAN, NAN, NAN, NAN, NAN],
        ["m", "emotion", 1, "best frozen layer", "knn layer 4", 5, 0.45, 0.38, 0.52, 0.25, *[NAN] * 6],
        ["m", "emotion", 2, "head", "ft-head", 5, 0.50, 0.40, 0.60, 0.25, 0.05, -0.02, 0.12, 0.05, -0.02, 0.12],
        ["m", "emotion", 3, "fine-tuned", "ft-lora", 5, 0.66, 0.55, 0.77, 0.25, 0.16, 0.05, 0.27, 0.21, 0.09, 0.33],
        ["m", "emotion", 4, "shuffled control", "ft-lora-shuffled", 5, 0.24, 0.15, 0.33, 0.25, *[NAN] * 6],
    ]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / LADDER_CSV, index=False)
    (sentence,) = findings(tmp_path)
    assert sentence == (
        "On emotion (m): head (ft-head) differs (interval includes 0) by +0.05 [-0.02, 0.12]; fine-tuned (ft-lora) "
        "adds +0.21 [0.09, 0.33] over the best frozen layer (knn layer 4, 0.45 [0.38, 0.52]); zero-shot is at or "
        "below chance (0.21, chance 0.25; one evaluation, no interval); the shuffled-label control scores 0.24 "
        "[0.15, 0.33] (chance 0.25)."
    )
    assert findings(tmp_path / "elsewhere") == []
