"""The best-model finding: a model is called best only when its lead holds under the paired interval."""

from __future__ import annotations

from synthetic_run import make_results, write_run

from speechprobe.report import load_run, main_table
from speechprobe.report.findings import best_model_findings
from speechprobe.report.paired import paired_difference


def _sentences(tmp_path, boost: float):
    results = make_results()
    lower = (results["model"] == "whisper-base") & (results["task"] == "gender") & (results["metric"] == "macro_f1")
    results.loc[lower, "value"] = (results.loc[lower, "value"] - boost).clip(0, 1)  # whisper-base falls behind
    data = load_run(write_run(tmp_path / f"run{boost}", results))
    table = main_table(data)
    return {s.split(",")[0]: s for s in best_model_findings(data, table)}, data, table


def test_a_clear_lead_is_called_best_and_a_tie_is_not(tmp_path):
    said, data, table = _sentences(tmp_path, boost=0.10)
    # gender: tiny leads by about 0.10 on every fold (noise 0.015): its paired interval excludes 0
    assert said["On gender"].startswith("On gender, whisper-tiny is the best model")
    models = table[(table.task == "gender") & (table.num_layers > 1)].sort_values("macro_f1", ascending=False)
    top, second = list(models.itertuples(index=False))[:2]
    diff, half = paired_difference(data, "gender", top, second)
    assert 0.07 < diff < 0.13 and 0 < half < diff
    assert f"{diff:+.3f} ± {half:.3f} over whisper-base" in said["On gender"]
    # emotion: both curves peak at 0.70 with fold noise only: level, and no best model claimed
    assert "are level within the uncertainty" in said["On emotion"] and "no best model is claimed" in said["On emotion"]
    assert not any(s.startswith(("On mfcc", "On librosa")) for s in said)  # baselines are not ranked as models
