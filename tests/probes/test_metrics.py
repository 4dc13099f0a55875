import numpy as np
import pytest

from speechprobe.probes import CLUSTER_SCORERS, OOF_SCORERS, PROBE_SCORERS, accuracy, ami, macro_f1, nmi
from speechprobe.probes.metrics import kmeans_clusters


def cluster_nmi(X_train, X_test, y_test, n_classes, seed):
    """NMI of the k-means clusters the runner scores (fitted on ``X_train``, assigned on ``X_test``)."""
    return nmi(y_test, kmeans_clusters(X_train, X_test, n_classes, seed))


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


def test_macro_f1_over_the_fixed_label_set():
    y_true = ["a", "a", "b", "b"]
    y_pred = ["a", "a", "b", "a"]
    # classes a (F1 0.8) and b (F1 2/3); over the label set {a, b, c} the absent class c scores 0
    assert macro_f1(y_true, y_pred) == pytest.approx((0.8 + 2 / 3) / 2)
    assert macro_f1(y_true, y_pred, labels=["a", "b", "c"]) == pytest.approx((0.8 + 2 / 3) / 3)
    assert macro_f1([0, 0, 1], [0, 0, 1], labels=np.arange(3)) == pytest.approx(2 / 3)


def test_ami_is_near_zero_for_random_clusters_where_nmi_is_not():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 5)  # small n: NMI of random clusters is biased upward
    nmis, amis = [], []
    for _ in range(30):
        clusters = rng.integers(0, 4, len(y))
        nmis.append(nmi(y, clusters))
        amis.append(ami(y, clusters))
    assert np.mean(nmis) > 0.1 and abs(np.mean(amis)) < 0.03
    assert ami(y, y) == 1.0 and nmi(y, y) == 1.0


def test_scorer_mappings_are_name_to_callable():
    assert list(PROBE_SCORERS) == ["macro_f1", "accuracy"] and list(CLUSTER_SCORERS) == ["nmi", "ami"]
    assert list(OOF_SCORERS) == ["macro_f1_oof"]
    assert PROBE_SCORERS["macro_f1"]([0, 1], [0, 0], np.arange(3)) == pytest.approx((2 / 3) / 3)


def test_macro_f1_and_accuracy_equal_scikit_learn_bit_for_bit():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    for trial in range(300):
        n_classes = int(rng.integers(2, 8))
        n = int(rng.integers(1, 60))
        y_true = rng.integers(0, n_classes, n)
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, n_classes + 1, n))  # some outside labels
        labels = np.arange(n_classes) if trial % 3 else None
        if trial % 5 == 0:  # string labels, label set in another order
            names = np.array([f"c{k}" for k in range(n_classes + 1)])
            y_true, y_pred = names[y_true], names[y_pred]
            labels = None if labels is None else names[:n_classes][::-1]
        expected = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        assert macro_f1(y_true, y_pred, labels) == expected
        assert accuracy(y_true, y_pred) == accuracy_score(y_true, y_pred)


def test_values_outside_their_metrics_range_are_found() -> None:
    from speechprobe.probes.metrics import out_of_range

    metric = ["macro_f1", "macro_f1", "accuracy", "pearson", "r2", "ami", "nmi", "someday"]
    value = [7.5, 1.0, -0.01, -1.0, -40.0, -0.2, 1.2, 99.0]
    assert out_of_range(metric, value).tolist() == [True, False, True, False, False, False, True, False]
