"""Probe every layer: per (layer, fold), fit each probe and k-means, score the test fold."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..errors import ConfigError
from .cv import Fold, make_folds
from .estimators import make_probe
from .metrics import accuracy, cluster_nmi, macro_f1

CLUSTER_PROBE = "kmeans"
PROBE_METRICS = ("macro_f1", "accuracy")
CLUSTER_METRICS = ("nmi",)

Scores = dict[str, dict[str, float]]  # probe -> metric -> value


def _score_fold(
    features: np.ndarray, layer: int, fold: Fold, y: np.ndarray, probes: Sequence[str], n_classes: int, seed: int
) -> Scores:
    """Scores of every probe, and of k-means, on one layer and one fold.

    Runs single-threaded (BLAS and OpenMP): multi-threaded reductions, k-means' in particular, sum in
    scheduling order, so the last bits would depend on thread timing and on ``n_jobs``.
    """
    train, test = fold
    X_train, X_test = np.asarray(features[train, layer]), np.asarray(features[test, layer])
    scores: Scores = {}
    # Fixed iteration budgets are part of the protocol; degenerate layers may leave k-means short of k clusters.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in probes:
            pred = make_probe(name, seed).fit(X_train, y[train]).predict(X_test)
            scores[name] = {"macro_f1": macro_f1(y[test], pred), "accuracy": accuracy(y[test], pred)}
        scores[CLUSTER_PROBE] = {"nmi": cluster_nmi(X_train, X_test, y[test], n_classes, seed)}
    return scores


def probe_layers(
    features: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    probes: Sequence[str] = ("knn", "mlp"),
    n_folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
) -> list[dict]:
    """Tidy rows ``{layer, probe, fold, metric, value}`` for features ``(N, L, D)`` (may be a memmap).

    Rows are ordered by layer, probe (as given, then ``kmeans``), fold, metric, and are identical
    for the same inputs and seed whatever ``n_jobs``.
    """
    if features.ndim != 3:
        raise ConfigError(f"features must be (items, layers, dims), got shape {features.shape}")
    y = np.asarray(labels)
    if len(y) != features.shape[0]:
        raise ConfigError(f"got {len(y)} labels for {features.shape[0]} feature rows; give one label per item")
    probes = tuple(dict.fromkeys(probes))
    for name in probes:
        make_probe(name, seed)  # fail on unknown names before any work
    folds = make_folds(y, groups, n_folds, seed)
    n_classes = len(np.unique(y))
    cells = [(layer, k) for layer in range(features.shape[1]) for k in range(len(folds))]
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_score_fold)(features, layer, folds[k], y, probes, n_classes, seed) for layer, k in cells
    )
    if progress:
        jobs = tqdm(jobs, total=len(cells), desc="probing", unit="fold")
    scores = dict(zip(cells, jobs))
    return [
        {"layer": layer, "probe": probe, "fold": k, "metric": metric, "value": scores[layer, k][probe][metric]}
        for layer in range(features.shape[1])
        for probe in (*probes, CLUSTER_PROBE)
        for k in range(len(folds))
        for metric in (CLUSTER_METRICS if probe == CLUSTER_PROBE else PROBE_METRICS)
    ]
