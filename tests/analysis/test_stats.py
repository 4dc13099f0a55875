"""Permutation tests and control-task selectivity."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis import control_selectivity, label_permuter, permutation_scheme, permutation_test
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
        _, null, p = permutation_test(X, y, None, "knn", n_permutations=9, n_folds=3, seed=r)
        assert len(null) == 9
        assert 0.1 <= p <= 1.0
        ps.append(p)
    ps = np.array(ps)
    # Under H0, p is uniform on {0.1, 0.2, ..., 1}: mean 0.55 (sd of the mean of 20 ≈ 0.064); ties make it
    # slightly conservative. Expected count at p = 0.1: 2 of 20.
    assert 0.35 < ps.mean() < 0.8, ps
    assert (ps <= 0.1).sum() <= 5, ps
    assert (ps > 0.5).sum() >= 6, ps


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
        ps.append(permutation_test(X, y, groups, "knn", n_permutations=9, n_folds=3, seed=r)[2])
    ps = np.array(ps)
    assert 0.3 < ps.mean() < 0.85, ps
    assert (ps <= 0.1).sum() <= 3, ps


def test_permutation_p_small_on_separable_task() -> None:
    X, y = _blobs()
    observed, null, p = permutation_test(X, y, None, "knn", n_permutations=49, n_folds=5, seed=0)
    assert observed == pytest.approx(1.0)
    assert p == pytest.approx(1 / 50)
    assert null.max() < observed and null.mean() < 0.75


def test_permutation_observed_matches_probe_runner() -> None:
    """Same folds, seed and probe as results.csv: the observed score is the runner's mean over folds."""
    X, y = _blobs(seed=3, sep=1.0)
    groups = np.array([f"s{i % 6}" for i in range(len(y))])
    observed, _, _ = permutation_test(X, y, groups, "knn", n_permutations=3, n_folds=3, seed=7)
    rows = pd.DataFrame(probe_layers(X[:, None, :], y, groups, ("knn",), 3, 7))
    runner = rows[(rows["probe"] == "knn") & (rows["metric"] == "macro_f1")]["value"].mean()
    assert observed == pytest.approx(runner)


def test_permutation_grouped_data_is_deterministic() -> None:
    X, y = _blobs(seed=1, sep=0.0)
    groups = np.array([f"spk{i % 5}" for i in range(len(y))])
    a = permutation_test(X, y, groups, "knn", n_permutations=6, n_folds=5, seed=2)
    b = permutation_test(X, y, groups, "knn", n_permutations=6, n_folds=5, seed=2)
    assert a[0] == b[0] and a[2] == b[2]
    np.testing.assert_array_equal(a[1], b[1])
    c = permutation_test(X, y, groups, "knn", n_permutations=6, n_folds=5, seed=3)
    assert not np.array_equal(a[1], c[1])


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


def test_control_selectivity_per_layer() -> None:
    X, y = _blobs(seed=4, sep=6.0)
    rng = np.random.default_rng(5)
    features = np.stack([rng.normal(size=X.shape), X, np.ones_like(X)], axis=1)
    table = control_selectivity(features, y, None, "knn", n_folds=5, seed=0, n_repeats=3)
    assert list(table.columns) == ["layer", "real", "control", "selectivity"]
    assert list(table["layer"]) == [0, 1, 2]
    np.testing.assert_allclose(table["selectivity"], table["real"] - table["control"])
    noise, signal, constant = table.itertuples(index=False)
    assert signal.real == pytest.approx(1.0) and signal.selectivity > 0.3
    assert abs(noise.selectivity) < 0.3
    assert constant.real == pytest.approx(constant.control)  # a constant layer predicts one class either way
    assert signal.selectivity > max(noise.selectivity, constant.selectivity)
    again = control_selectivity(features, y, None, "knn", n_folds=5, seed=0, n_repeats=3)
    pd.testing.assert_frame_equal(table, again)


def test_bad_inputs() -> None:
    X, y = _blobs()
    with pytest.raises(ConfigError, match="permutations"):
        permutation_test(X, y, n_permutations=0)
    with pytest.raises(ConfigError, match="items, dims"):
        permutation_test(X[:, None, :], y)
    with pytest.raises(ConfigError, match="labels"):
        permutation_test(X, y[:-1])
    with pytest.raises(ConfigError, match="unknown probe"):
        permutation_test(X, y, probe="svm")
    with pytest.raises(ConfigError, match="2 classes"):
        permutation_test(X, np.array(["a"] * len(y)))
    with pytest.raises(ConfigError, match="items, layers, dims"):
        control_selectivity(X, y)
    with pytest.raises(ConfigError, match="n_repeats"):
        control_selectivity(X[:, None, :], y, n_repeats=0)
