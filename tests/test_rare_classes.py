"""--rare-classes end to end: a class the grouped folds cannot test is dropped (or merged) with a counted
reason in manifest.json and the report, leaves the scored label set, and the main table shows chance."""

import csv
import json

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError
from speechprobe.pipeline import run
from speechprobe.probes import read_predictions


def _relabel(manifest, rule):
    """Rewrite the tone manifest's labels: ``rule(label, group) -> label``."""
    rows = list(csv.reader(open(manifest)))
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([rows[0], *([p, rule(lab, g), g] for p, lab, g in rows[1:])])


def _cfg(tones, out, **kw):
    base = dict(
        models=[str(kw.pop("model"))] if "model" in kw else [],
        window="trimmed",
        tasks=[str(tones)],
        out=out,
        folds=4,
        baselines=["mfcc"],
        probes=["knn"],
        progress=False,
        permutations=0,
        embeddings=False,
        bootstrap=0,
        cue_probes=False,
        layer_weights=False,
        similarity=False,
        mdl=False,
        fingerprints=False,
    )
    return RunConfig.of(**{**base, **kw})


def test_one_speaker_class_is_dropped_with_a_counted_reason(tones, tiny_whisper, tmp_path, caplog):
    # 'high' spoken by one speaker only (as AccentDB's welsh): 4 grouped folds cannot test it on another speaker
    _relabel(tones, lambda lab, g: lab if lab != "high" or g == "spk0" else "mid")
    with caplog.at_level("WARNING", logger="speechprobe"):
        results = run(_cfg(tones, tmp_path / "run", model=tiny_whisper))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    task = manifest["tasks"]["tones"]
    reason = (
        "1 group(s) (speakers), fewer than the 4 that 4 grouped folds need: it cannot be tested on speakers "
        "it was not trained on"
    )
    assert task["rare_classes"] == {
        "rule": "drop",
        "need": {"clips": 4, "groups": 4},
        "classes": {"high": {"clips": 2, "groups": 1, "action": "dropped", "reason": reason}},
        "n_dropped": 2,
    }
    assert task["skipped_by_kind"]["rare_class"] == 2 and task["labels"] == {"low": 8, "mid": 14}
    assert task["scored_label_set"] == ["low", "mid"] and task["absent_classes"] == []
    assert manifest["chance"]["tones"]["num_classes"] == 2  # chance over the scored classes
    assert any(i["reason"] == f"class 'high' dropped: {reason}" for i in manifest["skipped"]["items"])
    line = "task tones: rare classes (drop): 'high' (2 clips, 1 group(s)) dropped; Macro-F1 is over the 2 "
    assert any(w.startswith(line) for w in manifest["warnings"]) and line in caplog.text
    # no fold scores a silent 0 for the dropped class: Macro-F1 is over {low, mid}, recomputed from the predictions
    pred = read_predictions(tmp_path / "run", "mfcc", "tones")
    assert list(pred.classes) == ["low", "mid"] and len(pred.y) == 22
    oof = results[(results.metric == "macro_f1_oof") & (results.probe == "knn")]["value"].iloc[0]
    y, guess = pred.classes[pred.y], pred.classes[pred.pred[0, 0, 0]]
    assert oof == pytest.approx(f1_score(y, guess, labels=["low", "mid"], average="macro"))
    report = (tmp_path / "run" / "report.md").read_text()
    assert "### Rare classes" in report and "| tones | high | 2 | 1 | dropped |" in report
    table = pd.read_csv(tmp_path / "run" / "main_table.csv")
    row = table.iloc[0]
    assert row["majority_accuracy"] == pytest.approx(14 / 22)
    assert row["majority_macro_f1"] == pytest.approx(2 * (14 / 22) / (1 + 14 / 22) / 2)
    assert row["stratified_macro_f1"] == pytest.approx(0.5)
    assert row["stratified_accuracy"] == pytest.approx((14 / 22) ** 2 + (8 / 22) ** 2)
    tex = (tmp_path / "run" / "main_table.tex").read_text()
    assert "Majority" in tex and f"{2 * (14 / 22) / (1 + 14 / 22) / 2:.3f} / {14 / 22:.2f}" in tex


def test_merge_keeps_short_classes_as_one_rest_class(tones, tmp_path):
    # 'high' on speakers 0-1 and 'top' on speakers 2-3: 2 groups each, 4 together
    _relabel(tones, lambda lab, g: "top" if lab == "high" and g in ("spk2", "spk3") else lab)
    run(_cfg(tones, tmp_path / "merge", rare_classes="merge:rest", report=False))
    task = json.loads((tmp_path / "merge" / "manifest.json").read_text())["tasks"]["tones"]
    assert {c: (i["action"], i.get("into"), i["groups"]) for c, i in task["rare_classes"]["classes"].items()} == {
        "high": ("merged", "rest", 2),
        "top": ("merged", "rest", 2),
    }
    assert task["labels"] == {"low": 8, "mid": 8, "rest": 8} and task["scored_label_set"] == ["low", "mid", "rest"]
    assert task["rare_classes"]["n_dropped"] == 0 and "rare_class" not in task["skipped_by_kind"]
    clips = pd.read_csv(tmp_path / "merge" / task["clips_file"])
    assert sorted(clips["label"].unique()) == ["low", "mid", "rest"]


def test_nothing_left_to_compare_is_a_one_line_error_before_extraction(tones, tmp_path):
    _relabel(tones, lambda lab, g: lab if lab == "low" or g == "spk0" else "low")  # 'mid', 'high': one speaker
    with pytest.raises(ConfigError, match=r"task tones: class 'mid' has 2 clips, fewer than --folds 4"):
        run(_cfg(tones, tmp_path / "none"))
    assert not (tmp_path / "none" / "state.json").exists()
    with pytest.raises(ConfigError, match="--rare-classes 'keep'"):
        run(_cfg(tones, tmp_path / "bad", rare_classes="keep"))
