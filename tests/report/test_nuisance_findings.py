"""The findings say when a nuisance baseline alone reaches most of a model's lead over chance."""

import numpy as np
import pandas as pd

from speechprobe.report.findings import nuisance_findings

NUISANCES = {"duration": "clip duration", "channel": "the recording channel"}


def _table(rows):
    return pd.DataFrame(rows, columns=["task", "model", "macro_f1", "chance_macro_f1", "duration", "channel"])


def test_a_task_solvable_from_duration_is_named():
    """The real case that motivated it: 7 classes, chance 0.14, duration alone 0.335."""
    table = _table(
        [
            ["accent", "whisper-base", 0.50, 0.14, 0.335, 0.20],
            ["accent", "whisper-tiny", 0.40, 0.14, 0.335, 0.20],
            ["emotion", "whisper-base", 0.90, 0.25, 0.30, 0.26],
        ]
    )
    out = nuisance_findings(table, NUISANCES)
    assert out == [
        "Accent is largely solvable from clip duration: the duration baseline alone reaches Macro-F1 0.335 "
        "(chance 0.140), 54% of the way from chance to the best model (whisper-base, 0.500)."
    ]


def test_no_sentence_below_half_the_lead_or_without_a_lead():
    table = _table(
        [
            ["gender", "m", 0.80, 0.50, 0.64, np.nan],  # 47 % of the lead
            ["stress", "m", 0.30, 0.33, 0.32, 0.31],  # the model is not above chance
        ]
    )
    assert nuisance_findings(table, NUISANCES) == []
    assert len(nuisance_findings(_table([["gender", "m", 0.80, 0.50, 0.65, np.nan]]), NUISANCES)) == 1


def test_several_nuisances_on_one_task_make_one_sentence_strongest_first():
    table = _table([["emotion", "whisper-base", 0.787, 0.25, 0.638, 0.793]])
    assert nuisance_findings(table, NUISANCES) == [
        "Emotion is largely solvable from the recording channel: the channel baseline alone reaches Macro-F1 "
        "0.793 (chance 0.250), 101% of the way from chance to the best model (whisper-base, 0.787); clip "
        "duration (duration 0.638, 72%) also reaches at least half of that lead."
    ]
