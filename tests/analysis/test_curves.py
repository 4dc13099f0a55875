"""Curve shapes on constructed curves of known shape; baseline gains; paralinguistic summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_run import COLUMNS, make_manifest, make_results

from speechprobe.analysis import (
    CURVE_RULE,
    SHAPES,
    baseline_gain,
    best_layers,
    curve_shapes,
    fit_curve_shape,
    paralinguistic_summary,
    relative_depth,
    summarize,
)
from speechprobe.analysis.summary import num_layers

X13 = np.linspace(0.0, 1.0, 13)


@pytest.mark.parametrize(
    ("name", "y", "shape", "concavity"),
    [
        ("concave", 0.3 + 0.4 * np.sin(np.pi * X13), "peaked", "concave"),
        ("parabola", 0.8 - 1.6 * (X13 - 0.4) ** 2, "peaked", "concave"),
        ("convex", 0.8 - 0.5 * np.sin(np.pi * X13), "dipped", "convex"),
        ("rising", 0.3 + 0.5 * X13, "rising", "linear"),
        ("falling", 0.8 - 0.4 * X13, "falling", "linear"),
        ("saturating", 0.3 + 0.5 * (1 - np.exp(-5 * X13)), "rising", "concave"),
        ("decaying", 0.3 + 0.5 * np.exp(-5 * X13), "falling", "convex"),
        ("flat", 0.5 + 0.004 * np.sin(7 * X13), "flat", None),
    ],
)
def test_fit_curve_shape_known_curves(name: str, y: np.ndarray, shape: str, concavity: str | None) -> None:
    fit = fit_curve_shape(X13, y)
    assert fit["shape"] == shape, name
    assert fit["shape"] in SHAPES
    if concavity is not None:
        assert fit["concavity"] == concavity
    if concavity == "concave":
        assert fit["curvature"] < 0
    if concavity == "convex":
        assert fit["curvature"] > 0


def test_fit_curve_shape_quadratic_numbers() -> None:
    a, v, top = -1.6, 0.4, 0.8
    fit = fit_curve_shape(X13, top + a * (X13 - v) ** 2)
    assert fit["curvature"] == pytest.approx(2 * a)
    assert fit["vertex"] == pytest.approx(v)
    assert fit["peak_depth"] == pytest.approx(v) and fit["peak_height"] == pytest.approx(top)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["start"] == pytest.approx(top + a * v**2) and fit["end"] == pytest.approx(top + a * (1 - v) ** 2)
    dip = fit_curve_shape(X13, 0.2 + 1.0 * (X13 - 0.5) ** 2)
    assert dip["vertex"] == pytest.approx(0.5) and dip["peak_depth"] in (0.0, 1.0)
    rising = fit_curve_shape(X13, 0.1 + 0.5 * X13)
    assert rising["peak_depth"] == 1.0 and rising["peak_height"] == pytest.approx(0.6)
    assert np.isnan(rising["vertex"])


def test_fit_curve_shape_noise_and_tolerance() -> None:
    rng = np.random.default_rng(0)
    noisy = 0.3 + 0.5 * X13 + rng.normal(0, 0.01, X13.size)
    assert fit_curve_shape(X13, noisy)["shape"] == "rising"
    bump = np.full(X13.size, 0.5)
    bump[6] = 0.53  # a 0.03 bump: peaked at tol 0.02, flat when the fold CI is wider than the bump
    assert fit_curve_shape(X13, bump)["shape"] == "peaked"
    wide = fit_curve_shape(X13, bump, ci95=np.full(X13.size, 0.05))
    assert wide["shape"] == "flat" and wide["tau"] == pytest.approx(0.05)
    assert fit_curve_shape(X13, bump, tol=0.1)["shape"] == "flat"


def test_fit_curve_shape_too_few_points_and_order() -> None:
    two = fit_curve_shape([0.0, 1.0], [0.2, 0.6])
    assert two["shape"] == "too few layers" and np.isnan(two["curvature"])
    assert two["peak_depth"] == 1.0 and two["peak_height"] == 0.6
    assert fit_curve_shape([], [])["shape"] == "too few layers"
    order = np.random.default_rng(1).permutation(X13.size)
    y = 0.3 + 0.4 * np.sin(np.pi * X13)
    assert fit_curve_shape(X13[order], y[order])["shape"] == "peaked"
    with_nan = y.copy()
    with_nan[3] = np.nan
    assert fit_curve_shape(X13, with_nan)["shape"] == "peaked"


def test_curve_rule_is_stated() -> None:
    text = CURVE_RULE.format(tol=0.02)
    for word in ("quadratic", "curvature", "peaked", "dipped", "rising", "falling", "flat", "0.02"):
        assert word in text


def test_relative_depth() -> None:
    assert relative_depth(3, 7) == pytest.approx(0.5)
    assert relative_depth(0, 1) == 0.0
    np.testing.assert_allclose(relative_depth(np.arange(5), 5), [0, 0.25, 0.5, 0.75, 1.0])


def test_curve_shapes_on_synthetic_summary() -> None:
    summary = summarize(make_results())
    shapes = curve_shapes(summary).set_index(["model", "task", "probe"])
    assert set(shapes.index.get_level_values("model")) == {"whisper-base", "whisper-tiny"}  # baselines skipped
    for model in ("whisper-base", "whisper-tiny"):
        for probe in ("knn", "mlp"):
            assert shapes.loc[(model, "emotion", probe), "shape"] == "peaked"
            assert shapes.loc[(model, "emotion", probe), "peak_depth"] == pytest.approx(0.5, abs=0.1)
            assert shapes.loc[(model, "gender", probe), "shape"] == "rising"
            assert shapes.loc[(model, "keyword", probe), "shape"] == "dipped"
    assert "kmeans" not in set(shapes.index.get_level_values("probe"))


def test_depths_override_for_missing_top_layers() -> None:
    results = make_results()
    results = results[~((results["model"] == "whisper-base") & (results["layer"] >= 5))]
    summary = summarize(results)
    assert num_layers(summary)["whisper-base"] == 5
    depths = {"whisper-base": 7}
    assert num_layers(summary, depths)["whisper-base"] == 7
    best = best_layers(summary, depths=depths).set_index(["model", "task", "probe"])
    assert best.loc[("whisper-base", "emotion", "knn"), "relative_depth"] == pytest.approx(3 / 6)
    shapes = curve_shapes(summary, depths=depths).set_index(["model", "task", "probe"])
    assert shapes.loc[("whisper-base", "emotion", "knn"), "num_layers"] == 7


def _rows(model, task, probe, layer_values):
    return [
        (model, task, layer, probe, f, "macro_f1", v)
        for layer, vals in layer_values.items()
        for f, v in enumerate(vals)
    ]


def test_baseline_gain_with_paired_folds() -> None:
    results = pd.DataFrame(
        _rows("w", "emo", "knn", {0: [0.3, 0.4, 0.5], 1: [0.7, 0.8, 0.9], 2: [0.5, 0.5, 0.5]})
        + _rows("mfcc", "emo", "knn", {0: [0.4, 0.45, 0.6]})
        + _rows("librosa", "emo", "knn", {0: [0.5, 0.55, 0.65]})
        + _rows("w", "gender", "knn", {0: [0.9, 0.9], 1: [0.95, 0.97]}),
        columns=COLUMNS,
    )
    summary = summarize(results)
    gains = baseline_gain(summary, results=results).set_index(["model", "task"])
    emo = gains.loc[("w", "emo")]
    assert emo["layer"] == 1 and emo["baseline"] == "librosa"
    assert emo["baseline_score"] == pytest.approx(np.mean([0.5, 0.55, 0.65]))
    assert emo["gain"] == pytest.approx(0.8 - np.mean([0.5, 0.55, 0.65]))
    diffs = np.array([0.7, 0.8, 0.9]) - np.array([0.5, 0.55, 0.65])
    assert emo["gain_ci95"] == pytest.approx(4.302652729749462 * diffs.std(ddof=1) / np.sqrt(3))
    assert emo["n_paired_folds"] == 3
    gender = gains.loc[("w", "gender")]
    assert pd.isna(gender["baseline"]) and np.isnan(gender["gain"])
    no_folds = baseline_gain(summary).set_index(["model", "task"])
    assert np.isnan(no_folds.loc[("w", "emo"), "gain_ci95"])


def test_paralinguistic_summary() -> None:
    summary = summarize(make_results())
    manifest = make_manifest()
    gains = baseline_gain(summary)
    para = paralinguistic_summary(gains, manifest["tasks"]).set_index(["model", "group"])
    row = para.loc[("whisper-base", "paralinguistic")]
    assert row["n_tasks"] == 2 and row["tasks"] == "emotion, gender"
    expected = gains[(gains["model"] == "whisper-base") & gains["task"].isin(["emotion", "gender"])]
    assert row["mean_relative_depth"] == pytest.approx(expected["relative_depth"].mean())
    assert row["mean_gain"] == pytest.approx(expected["gain"].mean())
    assert para.loc[("whisper-base", "non-paralinguistic"), "tasks"] == "keyword"
    unknown = paralinguistic_summary(gains, {}).set_index(["model", "group"])
    assert set(unknown.index.get_level_values("group")) == {"unknown"}
    assert paralinguistic_summary(gains.iloc[0:0], {}).empty
