"""The torch kernels against the scikit-learn estimators they reproduce, and the backends of probe_layers."""

import warnings

import numpy as np
import pytest
import torch
from joblib import parallel_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from gpu import DEVICES, cuda_only
from speechprobe.config import ProbeSettings
from speechprobe.errors import ConfigError
from speechprobe.probes import make_probe, probe_layers
from speechprobe.probes.estimators import can_validate, stops_early
from speechprobe.probes.fast import (
    fold_predictions,
    kernel_arguments,
    knn_predict,
    mlp_predict,
    resolve_device,
    standardise_layers,
)
from speechprobe.probes.runner import _plan

PROBES = ("knn", "mlp", "linear")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The kernels are called here directly, not through probe_layers, which runs them single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_layers(rng, n_layers, n_train, n_test, dim, dtype=np.float32):
    return (
        rng.normal(size=(n_layers, n_train, dim)).astype(dtype),
        rng.normal(size=(n_layers, n_test, dim)).astype(dtype),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [4, 24])  # 4: scikit-learn uses a k-d tree; 24: brute force
@pytest.mark.parametrize(("n_classes", "k"), [(2, 5), (4, 4), (5, 6), (3, 1)])
def test_knn_predictions_equal_sklearn_without_distance_ties(dim, n_classes, k, device):
    rng = np.random.default_rng(dim * 10 + k)
    train, test = _random_layers(rng, 3, 90, 60, dim)
    y_train = rng.integers(0, n_classes, 90)
    got = knn_predict(train, y_train, test, n_classes, n_neighbors=k, device=device)
    vote_ties = 0
    for layer in range(3):
        reference = KNeighborsClassifier(n_neighbors=k).fit(train[layer], y_train)
        np.testing.assert_array_equal(got[layer], reference.predict(test[layer]))
        _, neighbours = reference.kneighbors(test[layer])
        counts = np.stack([(y_train[neighbours] == c).sum(1) for c in range(n_classes)], axis=1)
        vote_ties += int(((counts == counts.max(1, keepdims=True)).sum(1) > 1).sum())
    if k > 1 and n_classes > 2:
        assert vote_ties > 0  # the class-tie rule (smallest class index) was exercised


def test_knn_exact_distance_ties_go_to_the_lowest_training_index():
    train = np.array([[[0.0], [2.0], [-2.0], [3.0]]])  # items 1 and 2 are both at distance 2 from 0
    test = np.array([[[0.0]]])
    y_train = np.array([0, 1, 2, 1])
    # k=2: item 0 and then the tie between items 1 (class 1) and 2 (class 2) -> item 1; classes 0 and 1 tie -> 0
    assert knn_predict(train, y_train, test, 3, n_neighbors=2)[0, 0] == 0
    y_train = np.array([2, 1, 0, 1])
    assert knn_predict(train, y_train, test, 3, n_neighbors=2)[0, 0] == 1


def test_knn_blocks_over_test_rows_give_the_same_predictions(monkeypatch):
    rng = np.random.default_rng(3)
    train, test = _random_layers(rng, 2, 40, 70, 8)
    y_train = rng.integers(0, 3, 40)
    whole = knn_predict(train, y_train, test, 3)
    monkeypatch.setattr("speechprobe.probes.fast.KNN_BLOCK_ELEMENTS", 2 * 40 * 7)  # blocks of 7 test rows
    np.testing.assert_array_equal(knn_predict(train, y_train, test, 3), whole)


def test_knn_needs_enough_training_items():
    train, test = _random_layers(np.random.default_rng(0), 1, 3, 2, 4)
    with pytest.raises(ConfigError, match="n_neighbors=5 <= 3"):
        knn_predict(train, np.array([0, 1, 0]), test, 2)


def _sklearn_mlp(train, y_train, test, **kwargs):
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(kwargs.pop("hidden_units"),), **kwargs).fit(train, y_train)
    return model.predict(test), model.predict_proba(test), model.n_iter_


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_classes", "max_iter"), [(4, 200), (2, 200), (3, 15)])
def test_mlp_kernel_reproduces_sklearn_predictions_and_iterations(dtype, n_classes, max_iter, device):
    rng = np.random.default_rng(n_classes)
    y_train = rng.integers(0, n_classes, 130)
    centres = rng.normal(size=(n_classes, 12))
    # Three layers with weak to strong class signal: they stop after different numbers of epochs.
    train = np.stack([centres[y_train] * s + rng.normal(size=(130, 12)) for s in (0.5, 1.0, 2.0)]).astype(dtype)
    test = rng.normal(size=(3, 300, 12)).astype(dtype)  # noise: many test items near a decision boundary
    settings = {"hidden_units": 32, "alpha": 1e-4, "learning_rate_init": 1e-2, "max_iter": max_iter, "random_state": 7}
    pred, proba, n_iter = mlp_predict(train, y_train, test, n_classes, device=device, **settings)
    for layer in range(3):
        ref_pred, ref_proba, ref_iter = _sklearn_mlp(train[layer], y_train, test[layer], **settings)
        assert n_iter[layer] == ref_iter
        np.testing.assert_array_equal(pred[layer], ref_pred)
        # Same algorithm: only the summation order inside matrix products differs.
        np.testing.assert_allclose(proba[layer], ref_proba, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-2)
    if max_iter == 200:
        assert len(set(n_iter.tolist())) > 1 and n_iter.min() < 200  # the stopping rule fired, per layer


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_classes", [4, 2])
def test_mlp_kernel_with_early_stopping_reproduces_sklearn(dtype, n_classes, device):
    rng = np.random.default_rng(10 + n_classes)
    y_train = rng.integers(0, n_classes, 150)
    centres = rng.normal(size=(n_classes, 12))
    train = np.stack([centres[y_train] * s + rng.normal(size=(150, 12)) for s in (0.3, 1.0, 2.0)]).astype(dtype)
    test = rng.normal(size=(3, 200, 12)).astype(dtype)
    settings = {"hidden_units": 32, "alpha": 1e-4, "learning_rate_init": 1e-2, "max_iter": 200, "random_state": 3}
    pred, proba, n_iter = mlp_predict(train, y_train, test, n_classes, device=device, early_stopping=True, **settings)
    for layer in range(3):
        ref_pred, ref_proba, ref_iter = _sklearn_mlp(
            train[layer], y_train, test[layer], early_stopping=True, **settings
        )
        assert n_iter[layer] == ref_iter < 200  # stopped on the validation split, at scikit-learn's epoch
        np.testing.assert_array_equal(pred[layer], ref_pred)  # the best epoch's weights, as scikit-learn keeps
        np.testing.assert_allclose(proba[layer], ref_proba, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-4)


def test_mlp_early_stopping_needs_a_validation_split_and_a_large_enough_training_part():
    # 2 classes, one with a single item: no stratified split; the probe and the kernel train on the loss rule
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)), np.array([0] * 11 + [1])
    assert not can_validate(y, 0.1) and can_validate(np.arange(12) % 2, 0.1) and can_validate(np.arange(12) % 3, 0.1)
    probe = make_probe("mlp", 0, ProbeSettings(mlp_hidden=8, mlp_early_stopping_min_train=0)).fit(X, y)
    assert probe.pipeline_[-1].early_stopping is False
    pred = mlp_predict(X[None], y, X[None], 2, hidden_units=8, random_state=0, early_stopping=True)[0]
    np.testing.assert_array_equal(pred[0], probe.predict(X))
    # Below mlp_early_stopping_min_train items (the default, 2000, here) the validation split is not carved
    y = np.arange(12) % 3
    assert make_probe("mlp", 0).fit(X, y).pipeline_[-1].early_stopping is False
    early = make_probe("mlp", 0, ProbeSettings(mlp_early_stopping_min_train=12)).fit(X, y).pipeline_[-1]
    assert early.early_stopping is True and len(early.validation_scores_) == early.n_iter_
    assert stops_early(y, True, 0.1, 12) and not stops_early(y, True, 0.1, 13) and not stops_early(y, False, 0.1, 0)
    kwargs = {"hidden_units": 8, "random_state": 0, "max_iter": 30}
    plain = mlp_predict(X[None], y, X[None], 3, **kwargs)
    small = mlp_predict(X[None], y, X[None], 3, early_stopping=True, early_stopping_min_train=13, **kwargs)
    stopped = mlp_predict(X[None], y, X[None], 3, early_stopping=True, early_stopping_min_train=12, **kwargs)
    assert small[2][0] == plain[2][0] and stopped[2][0] == early.n_iter_ != plain[2][0]


def test_fold_predictions_in_layer_chunks_equal_all_layers_at_once(monkeypatch):
    rng = np.random.default_rng(5)
    features = rng.normal(size=(60, 5, 6)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    train, test = np.arange(15, 60), np.arange(15)
    kernels = {"knn": {"n_neighbors": 3}, "mlp": {**kernel_arguments("mlp", 0), "hidden_units": 8, "max_iter": 20}}
    whole = fold_predictions(features, train, test, y[train], kernels)
    monkeypatch.setattr("speechprobe.probes.fast.FOLD_CHUNK_BYTES", 2 * 60 * 6 * 4)  # two layers at a time
    chunked = fold_predictions(features, train, test, y[train], kernels)
    for name in kernels:
        assert whole[name].shape == (5, 15)
        np.testing.assert_array_equal(chunked[name], whole[name])


def test_mlp_kernel_uses_the_probe_settings():
    settings = kernel_arguments("mlp", seed=5)
    probe = make_probe("mlp", seed=5)
    assert settings["hidden_units"] == probe.hidden_units == 256
    assert settings["random_state"] == 5 and settings["max_iter"] == probe.max_iter
    assert kernel_arguments("knn", seed=0) == {"n_neighbors": 5}
    assert kernel_arguments("linear", seed=0) is None


def test_standardise_layers_is_the_pipeline_scaler():
    rng = np.random.default_rng(0)
    train, test = _random_layers(rng, 2, 20, 5, 3)
    train[1] = train[1] * 50 + 3
    out_train, out_test = standardise_layers(train, test)
    for layer in range(2):
        scaler = StandardScaler().fit(train[layer])
        np.testing.assert_array_equal(out_train[layer], scaler.transform(train[layer]))
        np.testing.assert_array_equal(out_test[layer], scaler.transform(test[layer]))
    assert out_train.dtype == np.float32


@pytest.fixture(scope="module")
def sklearn_rows(layered):
    features, y, groups = layered
    return probe_layers(features, y, groups, probes=PROBES, n_folds=3, seed=0, backend="sklearn")


@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_gives_the_sklearn_rows(layered, sklearn_rows, device):
    features, y, groups = layered
    rows = probe_layers(features, y, groups, probes=PROBES, n_folds=3, seed=0, backend="torch", device=device)
    assert rows == sklearn_rows  # every macro-F1, accuracy and NMI per (layer, fold) equal


def test_auto_backend_uses_the_kernels_on_a_gpu_only():
    assert _plan(PROBES, "auto", "cpu", 0) == ({}, None)  # on a CPU: the reference path, bit for bit
    kernels, device = _plan(PROBES, "torch", "cpu", 0)
    assert set(kernels) == {"knn", "mlp"} and device.type == "cpu"  # linear stays in scikit-learn
    assert _plan(PROBES, "sklearn", None, 0) == ({}, None)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_matches_sklearn_on_a_harder_task_with_uneven_folds(device):
    rng = np.random.default_rng(4)
    codes = np.repeat(np.arange(5), 20)
    y = np.array([f"class{c}" for c in codes])
    groups = np.array([f"spk{i % 13}" for i in range(len(y))])  # grouped folds of unequal size
    centres = rng.normal(size=(2, 5, 20)) * np.array([0.15, 0.6])[:, None, None]  # weak and medium signal
    features = (centres[:, codes].transpose(1, 0, 2) + rng.normal(size=(len(y), 2, 20))).astype(np.float32)
    kwargs = {"probes": ("knn", "mlp"), "n_folds": 4, "seed": 2}
    reference = probe_layers(features, y, groups, backend="sklearn", **kwargs)
    fast = probe_layers(features, y, groups, backend="torch", device=device, **kwargs)
    assert fast == reference
    assert 0.2 < np.mean([r["value"] for r in fast if r["metric"] == "macro_f1"]) < 0.95  # not a trivial task


@pytest.mark.slow
def test_torch_backend_is_identical_across_runs_and_n_jobs(layered):
    features, y, groups = layered
    kwargs = {"probes": ("knn", "mlp"), "n_folds": 3, "seed": 1, "backend": "torch", "device": "cpu"}
    serial = probe_layers(features[:, 1:], y, groups, **kwargs)
    assert serial == probe_layers(features[:, 1:], y, groups, **kwargs)
    # k-means cells in threads too (no worker start-up); BLAS/OpenMP pinned to 1 thread for all of them
    with parallel_config(backend="threading"), threadpool_limits(1):
        assert serial == probe_layers(features[:, 1:], y, groups, n_jobs=2, progress=True, **kwargs)


def test_torch_threads_are_restored(layered):
    features, y, groups = layered
    before = torch.get_num_threads()
    probe_layers(features[:, 1:2], y, groups, probes=("knn",), n_folds=2, backend="torch", device="cpu")
    assert torch.get_num_threads() == before


def test_bad_backend_and_device_raise_config_errors(layered):
    features, y, groups = layered
    with pytest.raises(ConfigError, match=r"unknown probe backend 'jax'; choose from auto, sklearn, torch"):
        probe_layers(features, y, groups, backend="jax")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            probe_layers(features, y, groups, backend="torch", device="cuda")
    with pytest.raises(ConfigError, match="unknown probe device"):
        resolve_device("tpu-please")


def test_too_few_training_items_for_knn_is_a_config_error():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 3)
    features = rng.normal(size=(6, 1, 4)).astype(np.float32)
    for backend in ("sklearn", "torch"):
        with pytest.raises(
            ConfigError, match="probe knn: n_neighbors=5 needs 5 training items but a training fold has only 3"
        ):
            probe_layers(features, y, None, probes=("knn",), n_folds=2, backend=backend)


@cuda_only
def test_auto_backend_takes_the_gpu_and_gives_the_sklearn_rows(layered, sklearn_rows):
    kernels, device = _plan(PROBES, "auto", None, 0)
    assert set(kernels) == {"knn", "mlp"} and device.type == "cuda"
    features, y, groups = layered
    assert probe_layers(features, y, groups, probes=PROBES, n_folds=3, seed=0, n_jobs=2) == sklearn_rows
