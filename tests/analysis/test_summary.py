"""Summaries over folds, best layers, chance levels and the headline table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from speechprobe.analysis import (
    best_layers,
    best_table,
    chance_levels,
    read_results,
    summarize,
    summarize_run,
)
from speechprobe.analysis.summary import corrected_t_halfwidth, fold_size_ratios
from speechprobe.errors import SpeechprobeError

COLUMNS = ["model", "task", "layer", "probe", "fold", "metric", "value"]


def _rows(model: str, task: str, probe: str, layer_values: dict, metric: str = "macro_f1") -> list:
    return [
        (model, task, layer, probe, fold, metric, v)
        for layer, values in layer_values.items()
        for fold, v in enumerate(values)
    ]


def _table(*groups: list) -> pd.DataFrame:
    return pd.DataFrame([r for g in groups for r in g], columns=COLUMNS)


def test_summarize_mean_std_ci() -> None:
    results = _table(
        _rows("m", "t", "knn", {0: [0.5, 0.6, 0.7], 1: [0.9]}),
        [("m", "t", 0, "knn", f, "accuracy", v) for f, v in enumerate([0.2, 0.4, 0.6, 0.8])],
    )
    s = summarize(results).set_index(["layer", "metric"])
    row = s.loc[(0, "macro_f1")]
    assert row["mean"] == pytest.approx(0.6)
    assert row["std"] == pytest.approx(0.1)
    assert row["n"] == 3
    # Corrected resampled t (Nadeau & Bengio): J = 3 folds of one partition, n_test / n_train = 1 / (J - 1).
    # By hand: t(0.975, 2) = 4.302653; sqrt((1/3 + 1/2) * 0.1^2) = 0.0912871; product 0.392777.
    assert row["ci95"] == pytest.approx(0.392777, abs=1e-6)
    acc = s.loc[(0, "accuracy")]
    std4 = np.std([0.2, 0.4, 0.6, 0.8], ddof=1)
    assert acc["std"] == pytest.approx(std4)
    assert acc["ci95"] == pytest.approx(3.1824463052837078 * np.sqrt((1 / 4 + 1 / 3) * std4**2))
    single = s.loc[(1, "macro_f1")]
    assert (single["mean"], single["std"], single["n"], single["ci95"]) == (0.9, 0.0, 1, 0.0)


def test_corrected_t_against_a_hand_computation() -> None:
    # Five folds x two repeats of one layer: J = 10, n_test / n_train = 20 / 80 = 0.25.
    values = [0.60, 0.64, 0.58, 0.66, 0.62, 0.61, 0.63, 0.59, 0.65, 0.62]
    s2 = np.var(values, ddof=1)  # squared deviations from 0.62 sum to 0.006; / 9
    assert s2 == pytest.approx(0.000666667, abs=1e-9)
    # t(0.975, 9) = 2.262157; sqrt((1/10 + 0.25) * s2) = 0.0152753; half-width 0.0345550
    assert corrected_t_halfwidth(np.sqrt(s2), 10, 0.25) == pytest.approx(0.0345550, abs=1e-6)
    assert corrected_t_halfwidth(np.sqrt(s2), 10, 0.0) == pytest.approx(2.262157 * np.sqrt(s2 / 10), abs=1e-6)
    results = _table(_rows("m", "t", "knn", {0: values}))
    by_task = summarize(results, {"t": 0.25}).iloc[0]
    assert by_task["n"] == 10 and by_task["ci95"] == pytest.approx(0.0345550, abs=1e-6)
    assert summarize(results, 0.25).iloc[0]["ci95"] == by_task["ci95"]
    default = summarize(results).iloc[0]["ci95"]  # no ratio: one 10-fold partition, 1/9
    assert default == pytest.approx(2.262157 * np.sqrt((0.1 + 1 / 9) * s2), abs=1e-6)


def test_out_of_fold_rows_have_no_t_interval() -> None:
    results = _table(_rows("m", "t", "knn", {0: [0.7, 0.72]}, metric="macro_f1_oof"))
    row = summarize(results).iloc[0]
    assert row["mean"] == pytest.approx(0.71) and row["n"] == 2 and np.isnan(row["ci95"])


def test_fold_size_ratios_from_the_manifest() -> None:
    manifest = {"cv": {"a": {"test_train_ratio": 0.25}, "b": {"test_train_ratio": None}, "c": {}}}
    assert fold_size_ratios(manifest) == {"a": 0.25}
    assert fold_size_ratios({}) == {}


def test_summarize_is_sorted_and_order_independent() -> None:
    results = _table(
        _rows("b", "t2", "mlp", {2: [0.1, 0.2], 0: [0.3, 0.4], 10: [0.5, 0.5]}),
        _rows("a", "t1", "knn", {1: [0.2, 0.3], 0: [0.6, 0.7]}),
    )
    first = summarize(results)
    again = summarize(results.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(first, again)
    assert list(first["model"]) == ["a", "a", "b", "b", "b"]
    assert list(first["layer"]) == [0, 1, 0, 2, 10]
    assert list(first.columns) == ["model", "task", "layer", "probe", "metric", "mean", "std", "n", "ci95"]


def test_zeroshot_rows_survive_csv_roundtrip(tmp_path: Path) -> None:
    results = _table(
        _rows("m", "t", "knn", {0: [0.4, 0.6], 1: [0.8, 0.8]}),
        [("m", "t", "", "zeroshot:qa:p1", 0, "macro_f1", 0.35)],
    )
    results.to_csv(tmp_path / "results.csv", index=False)
    summary = summarize_run(tmp_path)
    assert (tmp_path / "summary.csv").stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    zs = summary[summary["probe"] == "zeroshot:qa:p1"]
    assert len(zs) == 1 and pd.isna(zs["layer"].iloc[0]) and zs["mean"].iloc[0] == 0.35
    reread = read_results(tmp_path / "results.csv")
    assert reread["layer"].isna().sum() == 1
    best = best_layers(summary)
    assert list(best["probe"]) == ["knn"] and best["layer"].iloc[0] == 1


def test_summarize_rejects_missing_columns() -> None:
    with pytest.raises(SpeechprobeError, match="fold"):
        summarize(
            pd.DataFrame(
                {"model": ["m"], "task": ["t"], "layer": [0], "probe": ["knn"], "metric": ["nmi"], "value": [0.1]}
            )
        )


def test_best_layers_picks_best_with_relative_depth_and_ties() -> None:
    results = _table(
        _rows("w", "emo", "knn", {0: [0.2, 0.2], 1: [0.4, 0.4], 2: [0.5, 0.5], 3: [0.7, 0.6], 4: [0.3, 0.3]}),
        # tie between layers 1 and 3 -> lowest (1)
        _rows("w", "emo", "mlp", {0: [0.1], 1: [0.8], 2: [0.2], 3: [0.8], 4: [0.1]}),
        _rows("mfcc", "emo", "knn", {0: [0.45, 0.55]}),
        _rows("w", "emo", "knn", {0: [0.99], 4: [0.01]}, metric="accuracy"),
    )
    best = best_layers(summarize(results)).set_index(["model", "probe"])
    knn = best.loc[("w", "knn")]
    assert knn["layer"] == 3 and knn["mean"] == pytest.approx(0.65)
    assert knn["ci95"] == pytest.approx(12.706204736174696 * np.sqrt((1 / 2 + 1) * np.var([0.7, 0.6], ddof=1)))
    assert knn["num_layers"] == 5 and knn["relative_depth"] == pytest.approx(0.75)
    mlp = best.loc[("w", "mlp")]
    assert mlp["layer"] == 1 and mlp["relative_depth"] == pytest.approx(0.25)
    base = best.loc[("mfcc", "knn")]
    assert base["layer"] == 0 and base["num_layers"] == 1 and base["relative_depth"] == 0.0
    acc = best_layers(summarize(results), metric="accuracy")
    assert list(acc["layer"]) == [0]


def test_best_layers_empty_metric() -> None:
    results = _table(_rows("m", "t", "kmeans", {0: [0.3]}, metric="nmi"))
    out = best_layers(summarize(results), metric="macro_f1")
    assert out.empty and "relative_depth" in out.columns


def test_chance_levels_imbalanced() -> None:
    labels = ["a"] * 6 + ["b"] * 3 + ["c"]
    ch = chance_levels(labels)
    majority = ["a"] * len(labels)
    assert ch["majority_accuracy"] == pytest.approx(0.6)
    assert ch["majority_macro_f1"] == pytest.approx(f1_score(labels, majority, average="macro", zero_division=0))
    assert ch["majority_macro_f1"] == pytest.approx(0.25)
    # A uniform guesser, realised exactly: every item paired once with every class.
    classes = ["a", "b", "c"]
    y_true = [y for y in labels for _ in classes]
    y_pred = [c for _ in labels for c in classes]
    assert ch["uniform_macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert ch["uniform_macro_f1"] == pytest.approx(0.299402352033931)
    assert ch["uniform_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ch["macro_f1"] == pytest.approx(0.299402352033931) and ch["accuracy"] == pytest.approx(0.6)
    assert ch["num_classes"] == 3
    # A stratified guesser (labels drawn with the class shares), realised exactly: every item paired once
    # with every item's label, so each class is guessed in proportion to its share.
    y_true = [y for y in labels for _ in labels]
    y_pred = [x for _ in labels for x in labels]
    assert ch["stratified_macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert ch["stratified_macro_f1"] == pytest.approx(1 / 3)
    assert ch["stratified_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ch["stratified_accuracy"] == pytest.approx(0.6**2 + 0.3**2 + 0.1**2)  # 0.46


def test_chance_levels_balanced_and_skewed() -> None:
    assert chance_levels(list("abcd") * 5)["uniform_macro_f1"] == pytest.approx(0.25)
    skewed = chance_levels(["x"] * 99 + ["y"])
    assert skewed["macro_f1"] == pytest.approx(skewed["majority_macro_f1"])
    with pytest.raises(SpeechprobeError):
        chance_levels([])


def test_best_table_with_partial_data() -> None:
    results = _table(
        _rows("w", "emo", "knn", {0: [0.3], 1: [0.6], 2: [0.5]}),
        _rows("w", "emo", "mlp", {0: [0.4], 1: [0.5], 2: [0.7]}),
        _rows("h", "emo", "knn", {0: [0.2], 1: [0.25]}),
        _rows("h", "gender", "knn", {0: [0.9], 1: [0.8]}),
        _rows("mfcc", "emo", "knn", {0: [0.35]}),
        _rows("mfcc", "emo", "mlp", {0: [0.45]}),
        _rows("mfcc", "accent", "knn", {0: [0.2]}),  # a task with only a baseline
    )
    table = best_table(summarize(results)).set_index(["model", "task"])
    assert sorted(table.index) == [(m, t) for m in ("h", "w") for t in ("accent", "emo", "gender")]
    w_emo = table.loc[("w", "emo")]
    assert (w_emo["probe"], w_emo["layer"], w_emo["macro_f1"]) == ("mlp", 2, 0.7)
    assert w_emo["relative_depth"] == pytest.approx(1.0)
    assert w_emo["mfcc"] == pytest.approx(0.45) and np.isnan(w_emo["librosa"])
    assert table.loc[("h", "emo"), "relative_depth"] == pytest.approx(1.0)
    assert pd.isna(table.loc[("w", "gender"), "macro_f1"])  # model missing a task
    assert table.loc[("h", "gender"), "layer"] == 0 and np.isnan(table.loc[("h", "gender"), "mfcc"])
    assert pd.isna(table.loc[("w", "accent"), "macro_f1"]) and table.loc[("w", "accent"), "mfcc"] == 0.2


def test_best_table_baselines_only() -> None:
    results = _table(_rows("mfcc", "emo", "knn", {0: [0.3, 0.5]}), _rows("librosa", "emo", "knn", {0: [0.6]}))
    table = best_table(summarize(results))
    assert len(table) == 1 and pd.isna(table["model"].iloc[0])
    assert table["mfcc"].iloc[0] == pytest.approx(0.4) and table["librosa"].iloc[0] == pytest.approx(0.6)


def test_empty_results() -> None:
    summary = summarize(pd.DataFrame(columns=COLUMNS))
    assert summary.empty and best_layers(summary).empty
    table = best_table(summary)
    assert table.empty and {"mfcc", "librosa", "macro_f1"} <= set(table.columns)
