"""Bootstrap over clips of out-of-fold predictions: weights, scores, best-layer shares, the run file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from speechprobe.analysis.bootstrap import (
    BOOTSTRAP_COLUMNS,
    best_layer_distribution,
    bootstrap_run,
    bootstrap_scores,
    bootstrap_table,
    resample_weights,
)
from speechprobe.analysis.uncertainty import bootstrap_best_table, coverage_table, uncertainty_warnings
from speechprobe.probes import OOFPredictions, write_predictions

N_GROUPS, PER_GROUP = 20, 10  # 20 speakers, each with one of two labels


def _oof(layer_accuracy: list[float], seed: int = 0, repeats: int = 1) -> OOFPredictions:
    """Predictions of one probe whose layers are right on a fixed share of clips (chosen at random)."""
    rng = np.random.default_rng(seed)
    n = N_GROUPS * PER_GROUP
    groups = np.repeat([f"spk{g}" for g in range(N_GROUPS)], PER_GROUP)
    y = np.repeat(np.arange(N_GROUPS) % 2, PER_GROUP)
    pred = np.zeros((repeats, 1, len(layer_accuracy), n), dtype=np.int16)
    for layer, acc in enumerate(layer_accuracy):
        right = rng.random(n) < acc
        pred[:, 0, layer] = np.where(right, y, 1 - y)
    fold_of = np.tile(np.arange(n) % 5, (repeats, 1))
    return OOFPredictions(np.array(["f", "m"]), y, ("knn",), fold_of, pred, 5, groups=groups)


def test_weights_resample_whole_groups_within_each_class():
    oof = _oof([1.0])
    weights, unit = resample_weights(oof.y, oof.groups, 50, seed=1)
    assert unit == "group" and weights.shape == (50, N_GROUPS * PER_GROUP)
    per_group = weights.reshape(50, N_GROUPS, PER_GROUP)
    assert (per_group == per_group[:, :, :1]).all()  # a speaker's clips are drawn together
    # 10 speakers per class, drawn 10 times within the class: each class keeps 100 clips
    for label in (0, 1):
        assert (weights[:, oof.y == label].sum(axis=1) == 100).all()
    again, _ = resample_weights(oof.y, oof.groups, 50, seed=1)
    np.testing.assert_array_equal(weights, again)
    clip, unit = resample_weights(oof.y, None, 5, seed=0)
    assert unit == "clip" and (clip[:, oof.y == 0].sum(axis=1) == 100).all()
    mixed = oof.groups.copy()
    mixed[0] = "spk1"  # speaker 1 now has clips of both labels
    assert resample_weights(oof.y, mixed, 2, seed=0)[1] == "group*"


def test_unit_weights_give_the_observed_out_of_fold_score():
    oof = _oof([0.9, 0.6], repeats=2)
    oof.pred[1, 0, 0, :7] = 1 - oof.y[:7]  # repeat 1 differs a little
    scores = bootstrap_scores(oof, np.ones((1, len(oof.y)), dtype=np.float32))[0]
    for layer in (0, 1):
        expected = np.mean([f1_score(oof.y, oof.pred[r, 0, layer], average="macro") for r in (0, 1)])
        assert scores[0, layer] == pytest.approx(expected, abs=1e-12)


def test_weighted_counts_equal_duplicated_clips():
    oof = _oof([0.7])
    w = np.zeros((1, len(oof.y)), dtype=np.float32)
    w[0, :30] = 2.0
    w[0, 100:150] = 1.0
    idx = np.r_[np.repeat(np.arange(30), 2), np.arange(100, 150)]
    expected = f1_score(oof.y[idx], oof.pred[0, 0, 0, idx], average="macro", labels=[0, 1], zero_division=0)
    assert bootstrap_scores(oof, w)[0, 0, 0] == pytest.approx(expected)


def test_unambiguous_best_layer():
    table = bootstrap_table(_oof([0.95, 0.6, 0.55]), "m", "t", n_boot=400, seed=0)
    assert list(table.columns) == BOOTSTRAP_COLUMNS and len(table) == 3
    best = table.set_index("layer").loc[0]
    assert best["p_best"] == 1.0 and best["p_best_overall"] == 1.0 and best["unit"] == "group"
    assert best["ci_low"] < best["observed"] < best["ci_high"] and best["ci_high"] - best["ci_low"] < 0.1
    assert table["p_best"].sum() == pytest.approx(1.0)
    assert best_layer_distribution(table, "m", "t", "knn") == "layer 0 in 100 % of resamples"


def test_ambiguous_best_layer():
    oof = _oof([0.8, 0.8, 0.5])
    rng = np.random.default_rng(7)
    for layer in (0, 1):  # exactly 80 of each class's 100 clips right, on different clips: equal observed scores
        for label in (0, 1):
            idx = np.flatnonzero(oof.y == label)
            right = np.isin(idx, rng.choice(idx, 80, replace=False))
            oof.pred[0, 0, layer, idx] = np.where(right, label, 1 - label)
    table = bootstrap_table(oof, "m", "t", n_boot=400, seed=0)
    assert table.loc[0, "observed"] == table.loc[1, "observed"]
    shares = table.set_index("layer")["p_best"]
    assert 0.15 < shares[0] < 0.85 and 0.15 < shares[1] < 0.85 and shares[2] == 0.0
    text = best_layer_distribution(table, "m", "t", "knn")
    assert text.startswith("layer ") and "% of resamples, layer " in text


def test_best_overall_spans_probes():
    oof = _oof([0.9, 0.6])
    two = OOFPredictions(
        oof.classes, oof.y, ("mlp", "knn"), oof.fold_of, np.concatenate([oof.pred[:, :, ::-1], oof.pred], 1), 5
    )
    two.groups = oof.groups
    table = bootstrap_table(two, "m", "t", n_boot=200).set_index(["probe", "layer"])
    assert table.loc[("knn", 0), "p_best"] == 1.0 and table.loc[("mlp", 1), "p_best"] == 1.0
    # knn layer 0 and mlp layer 1 are the same predictions: ties go to the lower layer
    assert table.loc[("knn", 0), "p_best_overall"] == 1.0 and table["p_best_overall"].sum() == pytest.approx(1.0)


def test_bootstrap_run_writes_the_file_and_the_report_tables(tmp_path):
    write_predictions(tmp_path, "m", "t", _oof([0.95, 0.6]))
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"m": {}}, "tasks": {"t": {}, "u": {}}}))
    table = bootstrap_run(tmp_path, n_boot=100)
    assert len(table) == 2 and set(table["task"]) == {"t"}  # u has no predictions
    back = pd.read_csv(tmp_path / "bootstrap.csv")
    assert list(back.columns) == BOOTSTRAP_COLUMNS and back["n_boot"].eq(100).all()
    best = pd.DataFrame([{"model": "m", "task": "t", "probe": "knn", "layer": 0, "mean": 0.94}])
    row = bootstrap_best_table(back, best).iloc[0]
    assert row["p_best"] == 1.0 and row["macro_f1"] == 0.94 and row["oof_ci_low"] < row["macro_f1_oof"]
    assert bootstrap_best_table(None, best).empty


def test_coverage_table_and_warnings():
    manifest = {
        "cv": {
            "t": {
                "scheme": "stratified-group-kfold",
                "n_splits": 2,
                "repeats": 1,
                "n_folds_total": 2,
                "n_groups": 5,
                "groups_per_class": {"a": 3, "b": 2},
                "singleton_groups": 1,
                "folds_missing_test_class": 1,
                "folds_missing_train_class": 0,
                "folds": [
                    {"fold": 0, "missing_test": ["b"], "missing_train": []},
                    {"fold": 1, "missing_test": [], "missing_train": []},
                ],
            }
        },
        "tasks": {"t": {"group_caveat": "speakers recur across dialogues", "singleton_groups": 1}},
    }
    row = coverage_table(manifest).iloc[0]
    assert row["min_groups_per_class"] == 2 and row["missing"] == "fold 0 test lacks b"
    text = " ".join(uncertainty_warnings(manifest))
    assert "speakers recur across dialogues" in text and "1 clip(s) have no speaker/group" in text
    assert "1 of 2 test folds and 0 training folds lack a class" in text
    assert coverage_table({}).empty
