import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from speechprobe.errors import ConfigError
from speechprobe.probes import (
    KNNProbe,
    LinearProbe,
    MLPProbe,
    macro_f1,
    make_probe,
    probe_names,
)


@parametrize_with_checks([KNNProbe(), LinearProbe(), MLPProbe(random_state=0)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("name", probe_names())
def test_separable_blobs_are_learned(name, blobs):
    X, y = blobs
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    probe = make_probe(name, seed=0).fit(X_train, y_train)
    assert macro_f1(y_test, probe.predict(X_test)) > 0.9
    proba = probe.predict_proba(X_test)
    assert proba.shape == (len(y_test), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(probe.classes_) == ["c0", "c1", "c2", "c3"]


@pytest.mark.parametrize("name", probe_names())
def test_seeded_probes_are_deterministic(name, blobs):
    X, y = blobs
    a = make_probe(name, seed=3).fit(X, y).predict_proba(X)
    b = make_probe(name, seed=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_scaler_is_fitted_inside_on_training_data(blobs):
    X, y = blobs
    probe = KNNProbe().fit(X * 1000 + 5, y)
    scaler = probe.pipeline_[0]
    np.testing.assert_allclose(scaler.mean_, (X * 1000 + 5).mean(axis=0), rtol=1e-4)


@pytest.mark.parametrize("name", probe_names())
def test_constant_columns_are_harmless(name, blobs):
    X, y = blobs
    X = np.hstack([X, np.full((len(y), 3), 7.0, dtype=np.float32)])
    pred = make_probe(name, seed=0).fit(X, y).predict(X)
    assert macro_f1(y, pred) > 0.9


def test_make_probe_returns_configured_instances():
    assert make_probe("mlp", seed=7).random_state == 7
    assert make_probe("mlp", seed=7).hidden_units == 256
    assert isinstance(make_probe("knn", 0), KNNProbe)
    assert isinstance(make_probe("linear", 0), LinearProbe)


def test_unknown_probe_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown probe 'svm'; choose from knn, mlp, linear"):
        make_probe("svm", seed=0)
