"""Depth fingerprints on constructed curves with a known peak and 90 % point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_run import COLUMNS, make_manifest, write_run

from speechprobe.analysis import analyse
from speechprobe.analysis.fingerprints import FINGERPRINT_COLUMNS, depth_points, fingerprint


def test_depth_points_measure_the_rise_above_the_floor() -> None:
    curve = np.array([0.2, 0.5, 0.88, 0.9, 0.85])
    peak, first = depth_points(curve, floor=0.2)  # threshold 0.2 + 0.9 * 0.7 = 0.83
    assert peak[0] == 3 and first[0] == 2
    curve = np.array([0.5, 0.83, 0.9])
    assert depth_points(curve, floor=0.0)[1][0] == 1  # 0.81 is reached at layer 1
    assert depth_points(curve, floor=0.5)[1][0] == 2  # above chance 0.5, 90 % of the rise is 0.86
    assert depth_points(np.array([0.5, 0.55]), floor=0.6)[1][0] == -1  # never above chance
    assert depth_points(np.array([0.4, 0.7, 0.7]), floor=0.0)[0][0] == 1  # ties: the lowest layer
    both = depth_points(np.array([[0.2, 0.5, 0.88, 0.9, 0.85], [0.9, 0.5, 0.2, 0.2, 0.2]]), floor=0.2)
    assert list(both[0]) == [3, 0] and list(both[1]) == [2, 0]


def test_fingerprint_intervals_cover_a_clear_curve() -> None:
    rng = np.random.default_rng(0)
    truth = np.array([0.30, 0.45, 0.70, 0.86, 0.90, 0.80, 0.60, 0.50, 0.45])  # 9 layers, peak at 4 (0.5)
    values = truth[:, None] + rng.normal(0, 0.01, size=(9, 5))
    rec = fingerprint(values, floor=0.25, n_boot=500, seed=0)
    assert rec["peak_layer"] == 4 and rec["peak_depth"] == pytest.approx(0.5)
    assert rec["d90_layer"] == 3 and rec["d90_depth"] == pytest.approx(3 / 8)  # 0.25 + 0.9 * 0.65 = 0.835
    assert rec["peak_depth_lo"] == rec["peak_depth_hi"] == pytest.approx(0.5) and rec["peak_share"] == 1.0
    assert rec["d90_depth_lo"] <= 3 / 8 <= rec["d90_depth_hi"]
    assert rec["n_folds"] == 5 and rec["n_boot"] == 500


def test_fingerprint_reports_an_uncertain_peak() -> None:
    rng = np.random.default_rng(1)
    truth = np.array([0.3, 0.6, 0.8, 0.8, 0.6])  # a tie between layers 2 and 3
    values = truth[:, None] + rng.normal(0, 0.05, size=(5, 5))
    rec = fingerprint(values, floor=0.2, n_boot=1000, seed=0)
    assert rec["peak_layer"] in (2, 3) and 0.2 < rec["peak_share"] < 0.95
    assert rec["peak_depth_lo"] <= 0.5 and rec["peak_depth_hi"] >= 0.75
    again = fingerprint(values, floor=0.2, n_boot=1000, seed=0)
    assert again == rec  # seeded


def _rows(model: str, task: str, curve, probe="knn", metric="macro_f1", target="") -> list[tuple]:
    rng = np.random.default_rng(len(model) + len(task))
    return [
        (model, task, layer, probe, fold, metric, float(v + rng.normal(0, 0.005)), target)
        for layer, v in enumerate(curve)
        for fold in range(5)
    ]


def test_depth_fingerprints_on_a_run(tmp_path: Path) -> None:
    models = ["whisper-base", "whisper-tiny", "mfcc"]
    manifest = make_manifest(tasks=["emotion"], models=models)
    manifest["models"]["whisper-tiny+random"] = {**manifest["models"]["whisper-tiny"], "space": "space-r"}
    rows = (
        _rows("whisper-base", "emotion", [0.3, 0.4, 0.6, 0.8, 0.85, 0.7, 0.6])  # chance 0.25: 90 % at 0.79
        + _rows("whisper-tiny", "emotion", [0.3, 0.8, 0.7, 0.6, 0.5])
        + _rows("whisper-tiny+random", "emotion", [0.3, 0.3, 0.31, 0.3, 0.3])
        + _rows("mfcc", "emotion", [0.5])
    )
    results = pd.DataFrame(rows, columns=[*COLUMNS, "target"]).drop(columns="target")
    run = write_run(tmp_path / "run", results, manifest, tasks=["emotion"], models=models)
    cue = _rows("whisper-base", "emotion", [0.1, 0.5, 0.6, 0.4, 0.3, 0.2, 0.1], "ridge", "r2", "f0_mean")
    pd.DataFrame(cue, columns=[*COLUMNS, "target"]).to_csv(run / "cues.csv", index=False)  # as analysis/cues.py
    out = analyse(run, "fingerprints", n_boot=200)
    table = pd.read_csv(run / "fingerprints.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == FINGERPRINT_COLUMNS
    assert set(table["model"]) == {"whisper-base", "whisper-tiny", "whisper-tiny+random"}  # no baseline
    base = table[(table["model"] == "whisper-base") & (table["metric"] == "macro_f1")].iloc[0]
    assert base["floor"] == pytest.approx(0.25) and base["peak_layer"] == 4 and base["d90_layer"] == 3
    assert base["peak_depth"] == pytest.approx(4 / 6) and base["d90_depth"] == pytest.approx(0.5)
    tiny = table[table["model"] == "whisper-tiny"].iloc[0]
    assert tiny["peak_depth"] == pytest.approx(0.25) and tiny["d90_depth"] == pytest.approx(0.25)
    cue = table[table["metric"] == "r2"].iloc[0]
    assert cue["target"] == "f0_mean" and cue["floor"] == 0.0 and cue["peak_layer"] == 2 and cue["d90_layer"] == 2
    fig = out.figures[0]
    assert (run / fig.path).is_file() and fig.section == "Depth fingerprints"
    assert "Random-init" in fig.caption and "acoustic cue" in fig.caption
    text = " ".join(out.findings)
    assert "On emotion (knn probe, Macro-F1)" in text and "For the cue f0_mean" in text
    assert "whisper-base reaches 90 % of its rise at relative depth 0.50" in text


def test_fingerprints_lead_the_report_and_their_table_is_in_the_findings(tmp_path: Path) -> None:
    from speechprobe.report import build_report

    run = write_run(tmp_path / "run", tasks=["emotion"], models=["whisper-tiny", "mfcc"])
    analyse(run, "fingerprints", n_boot=50)
    md = build_report(run).with_suffix(".md").read_text()
    assert 0 < md.index("![Figure 1](figures/headline.png)") < md.index("![Figure 2](figures/fingerprints.png)")
    table = md.split("### Depth fingerprints")[1].split("\n## ")[0]  # in "All findings": the table, no prose
    assert "| whisper-tiny | emotion | – | knn | macro\\_f1 | 0.50 |" in table


def test_cue_sentences_name_the_task_whose_clips_were_probed() -> None:
    from speechprobe.analysis.fingerprints import CUE_METRIC, CUE_PROBE, fingerprint_findings

    row = dict(probe=CUE_PROBE, metric=CUE_METRIC, target="f0_mean", num_layers=5, floor=0.0, peak_layer=1)
    row |= dict(peak_score=0.8, peak_depth=0.25, peak_depth_lo=0.0, peak_depth_hi=0.5, peak_share=0.7)
    row |= dict(d90_layer=1, d90_depth=0.25, d90_depth_lo=0.0, d90_depth_hi=0.5, n_folds=5, n_boot=100)
    table = pd.DataFrame([{**row, "model": "m", "task": t} for t in ("gender", "emotion")])
    (sentence,) = fingerprint_findings(table, "knn")
    assert sentence.startswith("For the cue f0_mean (ridge R²), m on the emotion clips reaches 90 %")
    assert "; m on the gender clips reaches 90 % of its rise at relative depth 0.25 (0.00–0.50)" in sentence


def test_a_cue_curve_that_never_rises_is_noted_by_its_cue() -> None:
    from speechprobe.analysis.fingerprints import CUE_METRIC, CUE_PROBE, fingerprint_table

    rows = [
        dict(model="m", task="gender", target=target, probe=CUE_PROBE, metric=CUE_METRIC, layer=layer, fold=fold)
        | {"value": value if target == "f0_mean" else -0.1}
        for target, value in (("f0_mean", 0.5), ("energy_range", 0.0))
        for layer in range(3)
        for fold in range(5)
    ]
    table, notes = fingerprint_table(pd.DataFrame(rows), {"models": {"m": {"num_layers": 3}}}, n_boot=20)
    assert len(table) == 2 and notes == ["m × gender, cue energy_range (ridge) never rises above chance"]
