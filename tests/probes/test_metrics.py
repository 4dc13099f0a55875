import numpy as np
import pytest

from speechprobe.probes import accuracy, cluster_nmi, macro_f1


def test_macro_f1_and_accuracy_values():
    y_true = ["a", "a", "a", "b"]
    y_pred = ["a", "a", "a", "a"]
    assert accuracy(y_true, y_pred) == 0.75
    assert macro_f1(y_true, y_pred) == pytest.approx((6 / 7 + 0) / 2)
    assert macro_f1(y_true, y_true) == 1.0
    assert isinstance(macro_f1(y_true, y_pred), float)


def test_nmi_is_near_one_on_separated_blobs(blob_maker):
    X, y = blob_maker(sep=10.0)
    rng = np.random.default_rng(5)
    X_test, y_test = X + rng.normal(scale=0.5, size=X.shape), y
    assert cluster_nmi(X, X_test, y_test, n_classes=4, seed=0) > 0.95


def test_nmi_is_near_zero_on_noise():
    rng = np.random.default_rng(0)
    X_train, X_test = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    y_test = np.repeat(["a", "b", "c", "d"], 100)
    assert cluster_nmi(X_train, X_test, y_test, n_classes=4, seed=0) < 0.05


def test_nmi_is_seeded_and_survives_constant_features(blobs):
    X, y = blobs
    assert cluster_nmi(X, X, y, 4, seed=1) == cluster_nmi(X, X, y, 4, seed=1)
    const = np.ones_like(X)
    with pytest.warns(Warning):  # k-means finds fewer distinct clusters than k
        assert cluster_nmi(const, const, y, 4, seed=0) == 0.0
