"""compare: one report across runs; incomparable runs are flagged, never merged silently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_run import make_manifest, make_results, write_run

from speechprobe.errors import SpeechprobeError
from speechprobe.report.compare import compare_runs, paired_interval

SMALL = {"tasks": ["emotion"], "models": ["whisper-tiny", "mfcc"]}


def _run(path, seed=0, **config):
    manifest = make_manifest(**SMALL)
    manifest["config"].update(config)
    return write_run(path, make_results(seed=seed, **SMALL), manifest, **SMALL)


def test_window_comparison_is_paired_by_fold(tmp_path):
    a = _run(tmp_path / "full", window="full")
    b = _run(tmp_path / "trimmed", seed=1, window="trimmed")
    html = compare_runs([a, b], tmp_path / "cmp")
    diffs = pd.read_csv(tmp_path / "cmp" / "differences.csv")
    row = diffs.iloc[0]
    assert (row["model"], row["run_a"], row["run_b"]) == ("whisper-tiny", "full", "trimmed")
    assert bool(row["comparable"]) and row["interval"] == "paired folds (corrected t)"
    fa = pd.read_csv(a / "results.csv").query("model == 'whisper-tiny' and probe == 'knn' and metric == 'macro_f1'")
    fb = pd.read_csv(b / "results.csv").query("model == 'whisper-tiny' and probe == 'knn' and metric == 'macro_f1'")
    la, lb = int(row["layer_a"]), int(row["layer_b"])
    diff = fb[fb.layer == lb].set_index("fold")["value"] - fa[fa.layer == la].set_index("fold")["value"]
    assert row["difference"] == pytest.approx(diff.mean())
    assert row["ci95"] == pytest.approx(paired_interval(diff.to_numpy()))
    facts = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert facts["incomparable"] == []
    page = html.read_text()
    assert "window" in page and "Not comparable" not in page and "plotly" in page.lower()
    settings = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| window | compared |" in settings


def test_a_different_seed_or_clip_set_is_flagged_not_merged(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", seed=1)
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["config"]["seed"] = 7
    manifest["tasks"]["emotion"]["fingerprint"] = "other-clips"
    (b / "manifest.json").write_text(json.dumps(manifest))
    compare_runs([a, b], tmp_path / "cmp")
    facts = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert any("seed differs" in f for f in facts["incomparable"])
    assert any("task emotion: different clips" in f for f in facts["incomparable"])
    diffs = pd.read_csv(tmp_path / "cmp" / "differences.csv")
    assert (diffs["interval"] == "not comparable").all() and diffs["difference"].isna().all()
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "## Not comparable" in md and "not compared (seed differs" in md
    with pytest.raises(SpeechprobeError, match="not comparable: a vs b: seed differs"):
        compare_runs([a, b], tmp_path / "strict", strict=True)


def test_an_unknown_setting_that_differs_makes_runs_incomparable(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", mystery_option=3)
    compare_runs([a, b], tmp_path / "cmp")
    facts = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert facts["incomparable"] == ["a vs b: mystery_option differs (a: null, b: 3)"]


def test_compare_needs_two_run_directories(tmp_path):
    a = _run(tmp_path / "a")
    with pytest.raises(SpeechprobeError, match="at least two"):
        compare_runs([a], tmp_path / "cmp")
    with pytest.raises(SpeechprobeError, match="no such run directory"):
        compare_runs([a, tmp_path / "missing"], tmp_path / "cmp")


def test_paired_interval_is_the_corrected_resampled_t():
    diff = np.array([0.01, 0.03, -0.01, 0.02, 0.00])
    # t(0.975, 4) = 2.7764; r = 1/4 for one 5-fold partition
    expected = 2.7764451 * np.sqrt((1 / 5 + 1 / 4) * diff.var(ddof=1))
    assert paired_interval(diff) == pytest.approx(expected, rel=1e-6)
    assert paired_interval(diff, ratio=0.0) == pytest.approx(2.7764451 * diff.std(ddof=1) / np.sqrt(5), rel=1e-6)


def test_the_comparison_summary_names_only_differences_that_hold_largest_first():
    import numpy as np

    from speechprobe.report.compare import DIFF_COLUMNS, SUMMARY_LINES, Comparison, _summary_lines

    settings = pd.DataFrame({"setting": ["dtype"], "kind": ["compared"], "a": ["float32"], "b": ["bf16"]})
    rows = [  # task, model, difference, ci95
        ("emotion", "m", 0.05, 0.02),
        ("gender", "m", -0.20, 0.05),
        ("stress", "m", 0.01, 0.04),  # within its interval: counted, not a sentence
        *((f"t{k}", "m", 0.10 + k / 100, 0.01) for k in range(10)),
    ]
    diffs = pd.DataFrame(
        [
            {"task": t, "model": m, "run_a": "a", "run_b": "b", "score_a": 0.5, "score_b": 0.5 + d, "layer_a": 1}
            | {"layer_b": 1, "difference": d, "ci95": c, "interval": "paired folds (corrected t)", "comparable": True}
            for t, m, d, c in rows
        ],
        columns=DIFF_COLUMNS,
    )
    lines = _summary_lines(Comparison(["a", "b"], settings), diffs)
    assert len(lines) == SUMMARY_LINES and lines[:2] == [
        "2 runs: a, b.",
        "They differ in dtype (what this comparison is about).",
    ]
    assert lines[2].startswith("m on gender: b is lower beyond the 95 % interval (b 0.300, a 0.500; difference -0.200")
    sizes = [abs(float(line.split("difference ")[1].split(" ")[0])) for line in lines[2:-1]]
    assert sizes == sorted(sizes, reverse=True) and np.isclose(sizes[-1], 0.14)  # 7 of 12 fit
    assert lines[-1] == (
        "1 (model, task) pair(s) show no difference beyond the 95 % interval; 5 more difference(s): see "
        "'Differences between runs'."
    )
