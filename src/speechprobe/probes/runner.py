"""Probe every layer: per (layer, fold), fit each probe and k-means, score the test fold.

Two ways to get the scores, which agree within the tolerance documented in :mod:`.fast`:

- ``backend="sklearn"``, the reference: every (layer, fold) cell fits the scikit-learn probes of
  :mod:`.estimators` and k-means, one cell per joblib process.
- ``backend="torch"``: KNN and the MLP run as batched torch kernels, all layers of a fold at once, on
  ``device``; the other probes and k-means stay on the scikit-learn path.
- ``backend="auto"`` (default): the torch kernels on a GPU, the reference path on a CPU. On a CPU the
  work is bound by the MLP's matrix products, which scikit-learn already runs at full single-core speed:
  the batched torch copies measured 0.75x-0.85x (MLP) and 0.4x-1.3x (KNN) of the estimators there
  (``benchmarks/README.md``), so batching only pays on a GPU. A CPU gets its speed from ``n_jobs``.

Both paths are single-threaded inside each job (BLAS, OpenMP and torch on the CPU): multi-threaded
reductions sum in scheduling order, so the last bits would otherwise depend on thread timing and on
``n_jobs``. ``n_jobs`` spreads jobs (cells, and folds for the torch kernels) over cores instead.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..parallel import single_threaded
from .cv import Fold, make_folds
from .estimators import make_probe
from .metrics import accuracy, cluster_nmi, macro_f1

CLUSTER_PROBE = "kmeans"
PROBE_METRICS = ("macro_f1", "accuracy")
CLUSTER_METRICS = ("nmi",)
BACKENDS = ("auto", "sklearn", "torch")

Scores = dict[str, dict[str, float]]  # probe -> metric -> value


def _probe_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"macro_f1": macro_f1(y_true, y_pred), "accuracy": accuracy(y_true, y_pred)}


def _score_cell(
    features: np.ndarray, layer: int, fold: Fold, y: np.ndarray, probes: Sequence[str], n_classes: int, seed: int
) -> Scores:
    """Scores of the scikit-learn probes ``probes``, and of k-means, on one layer and one fold."""
    train, test = fold
    X_train, X_test = np.asarray(features[train, layer]), np.asarray(features[test, layer])
    scores: Scores = {}
    # Fixed iteration budgets are part of the protocol; degenerate layers may leave k-means short of k clusters.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in probes:
            scores[name] = _probe_scores(y[test], make_probe(name, seed).fit(X_train, y[train]).predict(X_test))
        scores[CLUSTER_PROBE] = {"nmi": cluster_nmi(X_train, X_test, y[test], n_classes, seed)}
    return scores


def _torch_settings(name: str, seed: int) -> dict | None:
    """Keyword arguments of the torch kernel that reproduces probe ``name``, or None when there is none."""
    params = make_probe(name, seed)._classifier().get_params()
    if name == "knn":
        euclidean = params["metric"] == "euclidean" or (params["metric"] == "minkowski" and params["p"] == 2)
        if params["weights"] != "uniform" or not euclidean:
            return None
        return {"n_neighbors": params["n_neighbors"]}
    if name == "mlp":
        supported = (
            params["solver"] == "adam"
            and params["activation"] == "relu"
            and params["batch_size"] == "auto"
            and params["shuffle"]
            and not params["early_stopping"]
            and len(params["hidden_layer_sizes"]) == 1
            and isinstance(params["random_state"], (int, np.integer))
        )
        if not supported:
            return None
        keys = ("alpha", "learning_rate_init", "max_iter", "random_state", "tol", "n_iter_no_change")
        return {
            "hidden_units": params["hidden_layer_sizes"][0],
            **{k: params[k] for k in keys},
            **{k: params[k] for k in ("beta_1", "beta_2", "epsilon")},
        }
    return None


def _score_torch_fold(
    features: np.ndarray, fold: Fold, y: np.ndarray, kernels: dict[str, dict], device
) -> dict[int, Scores]:
    """Scores of the torch kernels ``kernels`` (probe -> settings) on every layer of one fold."""
    from .fast import knn_predict, mlp_predict, standardise_layers

    train, test = fold
    X_train = np.asarray(features[train]).transpose(1, 0, 2)
    X_test = np.asarray(features[test]).transpose(1, 0, 2)
    X_train, X_test = standardise_layers(X_train, X_test)
    classes, codes = np.unique(y[train], return_inverse=True)
    scores: dict[int, Scores] = {layer: {} for layer in range(X_train.shape[0])}
    for name, settings in kernels.items():
        if len(classes) == 1:  # a training fold of one class: both estimators predict it everywhere
            pred = np.zeros((X_test.shape[0], X_test.shape[1]), dtype=int)
        elif name == "knn":
            pred = knn_predict(X_train, codes, X_test, len(classes), device=device, **settings)
        else:
            pred = mlp_predict(X_train, codes, X_test, len(classes), device=device, **settings)[0]
        for layer, layer_pred in enumerate(classes[pred]):
            scores[layer][name] = _probe_scores(y[test], layer_pred)
    return scores


@contextlib.contextmanager
def _torch_single_thread(device) -> Iterator[None]:
    """One torch (and BLAS) thread per job on the CPU, restored afterwards; a no-op for a GPU."""
    if device.type != "cpu":
        yield
        return
    with single_threaded():
        yield


def _plan(probes: Sequence[str], backend: str, device, seed: int) -> tuple[dict[str, dict], object]:
    """Which probes run as torch kernels (probe -> settings), and on which torch device."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown probe backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "sklearn":
        return {}, None
    from .fast import resolve_device

    dev = resolve_device(device)
    if backend == "auto" and dev.type == "cpu":
        return {}, None
    kernels = {name: _torch_settings(name, seed) for name in probes}
    return {name: settings for name, settings in kernels.items() if settings is not None}, dev


def probe_layers(
    features: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    probes: Sequence[str] = ("knn", "mlp"),
    n_folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
    *,
    backend: str = "auto",
    device: str | None = None,
) -> list[dict]:
    """Tidy rows ``{layer, probe, fold, metric, value}`` for features ``(N, L, D)`` (may be a memmap).

    Rows are ordered by layer, probe (as given, then ``kmeans``), fold, metric, and are identical
    for the same inputs, seed, backend and device whatever ``n_jobs``. ``backend`` is ``"auto"`` (torch
    kernels on a GPU, else the reference), ``"sklearn"`` (the reference estimators only) or ``"torch"``
    (the kernels on any device); see the module docstring and :mod:`.fast` for the tolerance. ``device``
    is where the kernels run (default: CUDA when available, else the CPU).
    """
    if features.ndim != 3:
        raise ConfigError(f"features must be (items, layers, dims), got shape {features.shape}")
    y = np.asarray(labels)
    if len(y) != features.shape[0]:
        raise ConfigError(f"got {len(y)} labels for {features.shape[0]} feature rows; give one label per item")
    probes = tuple(dict.fromkeys(probes))
    for name in probes:
        make_probe(name, seed)  # fail on unknown names before any work
    kernels, dev = _plan(probes, backend, device, seed)
    folds = make_folds(y, groups, n_folds, seed)
    if "knn" in probes:
        k, smallest = make_probe("knn", seed).n_neighbors, min(len(train) for train, _ in folds)
        if k > smallest:
            raise ConfigError(f"KNN needs {k} neighbours but a training fold has only {smallest} items; add items")
    n_classes = len(np.unique(y))
    n_layers = features.shape[1]
    sk_probes = tuple(name for name in probes if name not in kernels)
    cells = [(layer, k) for layer in range(n_layers) for k in range(len(folds))]
    bar = tqdm(total=len(cells) + (len(folds) if kernels else 0), desc="probing", unit="job", disable=not progress)

    # scikit-learn cells first: with n_jobs > 1 they start in worker processes while the torch kernels run here.
    cell_jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_score_cell)(features, layer, folds[k], y, sk_probes, n_classes, seed) for layer, k in cells
    )
    torch_scores: dict[int, dict[int, Scores]] = {}
    if kernels:
        with _torch_single_thread(dev):
            jobs = (delayed(_score_torch_fold)(features, fold, y, kernels, dev) for fold in folds)
            workers = n_jobs if dev.type == "cpu" else 1  # a GPU runs the folds one after another
            for k, fold_scores in enumerate(Parallel(n_jobs=workers, backend="threading", return_as="generator")(jobs)):
                torch_scores[k] = fold_scores
                bar.update()
    scores: dict[tuple[int, int], Scores] = {}
    for cell, cell_scores in zip(cells, cell_jobs):
        layer, k = cell
        scores[cell] = {**torch_scores.get(k, {}).get(layer, {}), **cell_scores}
        bar.update()
    bar.close()
    return [
        {"layer": layer, "probe": probe, "fold": k, "metric": metric, "value": scores[layer, k][probe][metric]}
        for layer in range(n_layers)
        for probe in (*probes, CLUSTER_PROBE)
        for k in range(len(folds))
        for metric in (CLUSTER_METRICS if probe == CLUSTER_PROBE else PROBE_METRICS)
    ]
