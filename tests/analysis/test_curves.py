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
    wide = fit_curve_shape(X13, bump, ci95=np.full(X13.size, 0.05))  # the bump is within the noise
    assert wide["shape_point"] == "peaked" and wide["shape"] == "undetermined" and wide["tau"] == 0.02
    # best − first 0.03, half-width sqrt(2) * 0.05 = 0.0707: interval [-0.041, +0.101]
    assert "best − first +0.030 [-0.041, +0.101]" in wide["evidence"]
    assert fit_curve_shape(X13, bump, tol=0.1)["shape"] == "flat"
    level = np.full(X13.size, 0.5)
    assert fit_curve_shape(X13, level, ci95=np.full(X13.size, 0.005))["shape"] == "flat"  # 0.0071 < 0.02
    assert fit_curve_shape(X13, level, ci95=np.full(X13.size, 0.05))["shape"] == "undetermined"


FOLD_NOISE = np.array([0.0, 0.01, -0.01, 0.005, -0.005])


def _fold_scores(means: list[float], noise: np.ndarray) -> np.ndarray:
    """Five folds x layers: each layer's mean plus a per-fold offset (column ``noise[:, layer]``)."""
    return np.asarray(means)[None, :] + noise


def test_shape_claims_use_the_paired_corrected_t_interval() -> None:
    x = [0.0, 0.5, 1.0]
    means = [0.50, 0.60, 0.52]
    # Shared fold effects cancel in paired differences: only the per-layer jitter is uncertainty.
    shared = np.repeat(FOLD_NOISE[:, None] * 5, 3, axis=1)
    jitter = np.zeros((5, 3))
    jitter[:, 1] = [0.0, 0.01, -0.01, 0.0, 0.0]
    fit = fit_curve_shape(x, means, folds=_fold_scores(means, shared + jitter), ratio=0.25)
    # best − first: d = [0.1, 0.11, 0.09, 0.1, 0.1], s^2 = 0.00005; t(0.975, 4) = 2.776445;
    # half = 2.776445 * sqrt((0.2 + 0.25) * 0.00005) = 0.013170 -> [0.0868, 0.1132] >= 0.02
    assert fit["shape"] == "peaked" and fit["shape_point"] == "peaked"
    assert "best − first +0.100 [+0.087, +0.113]" in fit["evidence"]
    assert "best − last +0.080 [+0.067, +0.093]" in fit["evidence"]
    noisy = np.zeros((5, 3))
    noisy[:, 1] = [0.0, 0.08, -0.08, 0.04, -0.04]  # the same means, a layer that varies a lot across folds
    fit = fit_curve_shape(x, means, folds=_fold_scores(means, noisy), ratio=0.25)
    assert fit["shape_point"] == "peaked" and fit["shape"] == "undetermined"


def test_rising_and_flat_claims_from_folds() -> None:
    x = [0.0, 0.5, 1.0]
    rising = [0.50, 0.55, 0.60]
    jitter = np.zeros((5, 3))
    jitter[:, 2] = FOLD_NOISE
    assert fit_curve_shape(x, rising, folds=_fold_scores(rising, jitter))["shape"] == "rising"
    jitter[:, 2] = FOLD_NOISE * 20  # last − first 0.1 ± 0.2: its sign is not established
    assert fit_curve_shape(x, rising, folds=_fold_scores(rising, jitter))["shape"] == "undetermined"
    level = [0.5, 0.5, 0.501]
    calm = np.zeros((5, 3))
    calm[:, 1] = FOLD_NOISE * 0.1
    assert fit_curve_shape(x, level, folds=_fold_scores(level, calm))["shape"] == "flat"
    calm[:, 1] = FOLD_NOISE * 3  # half-width 2.776 * sqrt(0.45 * 0.0005625) = 0.044 > 0.02
    assert fit_curve_shape(x, level, folds=_fold_scores(level, calm))["shape"] == "undetermined"
    one_fold = fit_curve_shape(x, rising, folds=_fold_scores(rising, np.zeros((1, 3))))
    assert one_fold["shape"] == "undetermined"  # a single fold gives no interval


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
    # corrected resampled t, three folds: t(0.975, 2) * sqrt((1/3 + 1/2) * s^2)
    assert emo["gain_ci95"] == pytest.approx(4.302652729749462 * np.sqrt((1 / 3 + 1 / 2) * diffs.var(ddof=1)))
    ratio = baseline_gain(summary, results=results, ratios={"emo": 0.25}).set_index(["model", "task"])
    assert ratio.loc[("w", "emo"), "gain_ci95"] == pytest.approx(
        4.302652729749462 * np.sqrt((1 / 3 + 0.25) * diffs.var(ddof=1))
    )
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
