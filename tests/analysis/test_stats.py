"""Selection-aware permutation tests, empirical chance, Holm and Benjamini–Hochberg."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis import benjamini_hochberg, holm, label_permuter, permutation_scheme, selection_test
from speechprobe.analysis.stats import chance_table
from speechprobe.errors import ConfigError
from speechprobe.probes import make_folds, probe_layers


def _noise(seed: int, n_per_class: int = 15, n_classes: int = 2, dim: int = 3):
    rng = np.random.default_rng(seed)
    y = np.repeat([f"c{i}" for i in range(n_classes)], n_per_class)
    return rng.normal(size=(len(y), dim)), y


def _blobs(seed: int = 0, n_per_class: int = 15, sep: float = 5.0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b"], n_per_class)
    X = rng.normal(size=(len(y), 4)) + sep * (y == "b")[:, None]
    return X, y


def test_permutation_p_is_roughly_uniform_without_signal() -> None:
    ps = []
    for r in range(20):
        X, y = _noise(100 + r)
        test = selection_test(X[:, None], y, None, ("knn",), n_permutations=9, n_folds=3, seed=r)
        assert test.null.shape == (9, 1, 1) and test.n_permutations == 9
        assert 0.1 <= test.p_value <= 1.0 and test.p_value == test.layer_p[0, 0]  # one layer: nothing selected
        ps.append(test.p_value)
    ps = np.array(ps)
    # Under H0, p is uniform on {0.1, 0.2, ..., 1}: mean 0.55 (sd of the mean of 20 ≈ 0.064); ties make it
    # slightly conservative. Expected count at p = 0.1: 2 of 20.
    assert 0.35 < ps.mean() < 0.8, ps
    assert (ps <= 0.1).sum() <= 5, ps
    assert (ps > 0.5).sum() >= 6, ps


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["within-group", "group-level"])
def test_permutation_p_not_small_without_signal_grouped(scheme: str) -> None:
    """Speaker effects in the features but no label signal: the restricted shuffles keep p large."""
    ps = []
    for r in range(12):
        rng = np.random.default_rng(500 + r)
        if scheme == "within-group":  # 6 speakers, each with both labels
            y, groups, per = np.tile(["a", "b"], 15), np.repeat([f"s{i}" for i in range(6)], 5), 5
        else:  # 10 speakers, one label each
            y, groups, per = np.repeat(["a", "b"] * 5, 3), np.repeat([f"s{i}" for i in range(10)], 3), 3
        speaker = rng.normal(size=(len(y) // per, 3)).repeat(per, axis=0)
        X = rng.normal(size=(len(y), 3)) + speaker
        assert permutation_scheme(y, groups) == scheme
        test = selection_test(X[:, None], y, groups, ("knn",), n_permutations=9, n_folds=3, seed=r)
        assert test.scheme == scheme
        ps.append(test.p_value)
    ps = np.array(ps)
    assert 0.3 < ps.mean() < 0.85, ps
    assert (ps <= 0.1).sum() <= 3, ps


def test_permutation_p_small_on_separable_task() -> None:
    X, y = _blobs()
    test = selection_test(X[:, None], y, None, ("knn",), n_permutations=49, n_folds=5, seed=0)
    assert test.observed_max == pytest.approx(1.0)
    assert test.p_value == pytest.approx(1 / 50)
    assert test.null_max.max() < test.observed_max and test.null_max.mean() < 0.75


def test_observed_scores_match_the_probe_runner_on_every_layer() -> None:
    """Same folds, seed and probe as results.csv: each layer's observed score is the runner's mean over folds."""
    X, y = _blobs(seed=3, sep=1.0)
    rng = np.random.default_rng(3)
    features = np.stack([X, X + rng.normal(size=X.shape), rng.normal(size=X.shape)], axis=1)
    groups = np.array([f"s{i % 6}" for i in range(len(y))])
    test = selection_test(features, y, groups, ("knn",), n_permutations=3, n_folds=3, seed=7)
    rows = pd.DataFrame(probe_layers(features, y, groups, ("knn",), 3, 7))
    runner = rows[(rows["probe"] == "knn") & (rows["metric"] == "macro_f1")].groupby("layer")["value"].mean()
    np.testing.assert_allclose(test.observed[0], runner.to_numpy(), rtol=0, atol=1e-12)
    assert test.best == (0, int(runner.to_numpy().argmax()))


def test_selection_test_is_deterministic() -> None:
    X, y = _blobs(seed=1, sep=0.0)
    features = np.stack([X, X[::-1]], axis=1)
    groups = np.array([f"spk{i % 5}" for i in range(len(y))])
    a = selection_test(features, y, groups, ("knn",), n_permutations=6, n_folds=5, seed=2)
    b = selection_test(features, y, groups, ("knn",), n_permutations=6, n_folds=5, seed=2)
    assert a.p_value == b.p_value and a.best == b.best
    np.testing.assert_array_equal(a.null, b.null)
    c = selection_test(features, y, groups, ("knn",), n_permutations=6, n_folds=5, seed=3)
    assert not np.array_equal(a.null, c.null)


def _correlated_noise(seed: int, n_layers: int = 13, n_per_class: int = 12, dim: int = 8):
    """Signal-free features whose layers are correlated like a network's (each layer = previous + noise)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b", "c"], n_per_class)
    layers = [rng.normal(size=(len(y), dim))]
    for _ in range(n_layers - 1):
        layers.append(0.8 * layers[-1] + 0.6 * rng.normal(size=(len(y), dim)))
    return np.stack(layers, axis=1), y


@pytest.mark.slow
def test_selection_aware_test_is_calibrated_where_the_best_layer_alone_is_not() -> None:
    """The fast version of benchmarks/calibration.py: 13 correlated signal-free layers, 40 datasets."""
    old, new = [], []
    for r in range(40):
        features, y = _correlated_noise(r)
        test = selection_test(features, y, None, ("knn",), n_permutations=99, n_folds=3, seed=r)
        old.append(test.layer_p[test.best] <= 0.05)  # the best layer alone, ignoring the selection
        new.append(test.p_value <= 0.05)
    # Binomial(40, 0.05): mean 2, P(>= 6) ≈ 0.05 (measured: 2). The layer-alone test rejected 21 of 40.
    assert sum(new) <= 5, sum(new)
    assert sum(old) >= 10 and sum(old) >= 3 * max(sum(new), 1), (sum(old), sum(new))


@pytest.mark.slow
def test_sequential_stopping_for_a_refitted_probe() -> None:
    X, y = _noise(7, n_per_class=10, dim=2)
    features = np.stack([X, X[:, ::-1]], axis=1)
    test = selection_test(features, y, None, ("linear",), n_permutations=200, n_folds=3, seed=0, sequential_h=3)
    assert test.sequential and test.n_permutations < 60  # no signal: three exceedances come early
    exceed = int((test.null_max >= test.observed_max - 1e-12).sum())
    assert exceed == 3 and test.p_value == pytest.approx(3 / test.n_permutations)
    assert test.null_max[-1] >= test.observed_max - 1e-12  # it stopped at the third exceedance
    full = selection_test(features, y, None, ("linear",), n_permutations=20, n_folds=3, seed=0, sequential_h=0)
    assert not full.sequential and full.n_permutations == 20
    np.testing.assert_array_equal(full.null[: test.n_permutations], test.null[:20])  # the same shuffles
    X, y = _blobs(sep=6.0)
    strong = selection_test(X[:, None], y, None, ("linear",), n_permutations=30, n_folds=3, seed=0, sequential_h=3)
    assert strong.n_permutations == 30 and strong.p_value == pytest.approx(1 / 31)  # no early stop


def test_selection_over_probes_takes_the_maximum_of_both() -> None:
    X, y = _blobs(seed=2, sep=1.5)
    rng = np.random.default_rng(0)
    features = np.stack([rng.normal(size=X.shape), X], axis=1)
    test = selection_test(features, y, None, ("knn", "linear"), n_permutations=20, n_folds=3, seed=0)
    assert test.null.shape[1:] == (2, 2) and test.sequential
    assert test.observed_max == test.observed.max() and test.best[1] == 1
    np.testing.assert_array_equal(test.null_max, test.null.reshape(len(test.null), -1).max(axis=1))


def test_holm_and_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max.
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted p * 4 / rank = 0.02, 0.02, 0.04, 0.04 -> running min from the top.
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(benjamini_hochberg([0.5, np.nan, 0.9]), [0.9, np.nan, 0.9])
    assert holm([0.9, 0.8]).max() <= 1.0 and benjamini_hochberg([]).size == 0


def test_schemes_keep_the_fold_and_group_structure() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 10)
    folds = make_folds(y, None, 5, 0)
    scheme, permute = label_permuter(y, None, folds)
    assert scheme == "within-fold"
    for _ in range(5):
        z = permute(rng)
        for train, test in folds:
            assert Counter(z[test]) == Counter(y[test]) and Counter(z[train]) == Counter(y[train])
    assert any((permute(rng) != y).any() for _ in range(3))

    groups = np.array([f"s{i % 6}" for i in range(len(y))])  # every speaker holds several labels
    folds = make_folds(y, groups, 3, 0)
    scheme, permute = label_permuter(y, groups, folds)
    assert scheme == "within-group" == permutation_scheme(y, groups)
    z = permute(rng)
    for g in np.unique(groups):
        assert Counter(z[groups == g]) == Counter(y[groups == g])
    assert (z != y).any()

    groups = np.array([f"s{i // 2}" for i in range(len(y))])  # each speaker carries one label
    folds = make_folds(y, groups, 3, 0)
    scheme, permute = label_permuter(y, groups, folds)
    assert scheme == "group-level"
    changed = False
    for _ in range(5):
        z = permute(rng)
        for g in np.unique(groups):
            assert len(set(z[groups == g])) == 1
        changed |= bool((z != y).any())
        assert Counter(z) == Counter(y)  # equal group sizes here, so class counts are kept
    assert changed
    assert permutation_scheme(y, [""] * len(y)) == "within-fold"  # empty group column = no groups


def test_chance_table_per_layer() -> None:
    X, y = _blobs(seed=4, sep=6.0)
    rng = np.random.default_rng(5)
    features = np.stack([rng.normal(size=X.shape), X, np.ones_like(X)], axis=1)
    test = selection_test(features, y, None, ("knn",), n_permutations=99, n_folds=5, seed=0)
    table = chance_table(test)
    assert list(table.columns) == ["layer", "score", "chance", "above_chance", "p_layer", "p_holm"]
    assert list(table["layer"]) == [0, 1, 2]
    np.testing.assert_allclose(table["above_chance"], table["score"] - table["chance"])
    np.testing.assert_allclose(table["chance"], test.null.mean(axis=0)[0])
    noise, signal, constant = table.itertuples(index=False)
    assert signal.score == pytest.approx(1.0) and signal.above_chance > 0.3 and signal.p_holm <= 3 / 100
    assert abs(noise.above_chance) < 0.3 and noise.p_layer > 0.05
    assert constant.score == pytest.approx(constant.chance)  # a constant layer predicts one class either way
    assert (table["p_holm"] >= table["p_layer"]).all()


def test_bad_inputs() -> None:
    X, y = _blobs()
    with pytest.raises(ConfigError, match="permutations"):
        selection_test(X[:, None], y, n_permutations=0)
    with pytest.raises(ConfigError, match="items, layers, dims"):
        selection_test(X, y)
    with pytest.raises(ConfigError, match="labels"):
        selection_test(X[:, None], y[:-1])
    with pytest.raises(ConfigError, match="unknown probe"):
        selection_test(X[:, None], y, probes=("svm",))
    with pytest.raises(ConfigError, match="2 classes"):
        selection_test(X[:, None], np.array(["a"] * len(y)))
