"""Probe metrics: macro-F1, accuracy, and k-means cluster NMI."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import accuracy_score, f1_score, normalized_mutual_info_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

KMEANS_N_INIT = 10


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean of per-class F1 (classes absent from both sides are ignored)."""
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions."""
    return float(accuracy_score(y_true, y_pred))


def cluster_nmi(X_train: np.ndarray, X_test: np.ndarray, y_test, n_classes: int, seed: int = 0) -> float:
    """NMI between ``y_test`` and the k-means clusters (k = ``n_classes``) of the test features.

    The scaler and k-means are fitted on ``X_train`` only; clusters are predicted for ``X_test``.
    """
    # One dtype on both sides: k-means rejects test data whose dtype differs from its centres.
    X_train, X_test = np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64)
    clusterer = make_pipeline(StandardScaler(), KMeans(n_classes, n_init=KMEANS_N_INIT, random_state=seed))
    clusters = clusterer.fit(X_train).predict(X_test)
    return float(normalized_mutual_info_score(y_test, clusters))
