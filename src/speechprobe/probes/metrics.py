"""Probe metrics: fixed-label macro-F1, accuracy, and k-means cluster NMI / AMI.

Every scorer has the signature ``scorer(y_true, y_pred, labels) -> float``, where ``labels`` is the
task's fixed label set (all classes of the task, whether or not a fold holds them). The runner takes
its scorers as mappings ``name -> scorer`` (:data:`PROBE_SCORERS`, :data:`CLUSTER_SCORERS`,
:data:`OOF_SCORERS`), in the style of scikit-learn's ``scoring={name: scorer}``, so a new metric is
one entry. Definitions, formulas and references: ``docs/statistics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

KMEANS_N_INIT = 10


class Scorer(Protocol):
    """``(y_true, y_pred, labels) -> score``; ``labels`` is the task's fixed label set."""

    def __call__(self, y_true, y_pred, labels: Sequence | np.ndarray | None = None) -> float: ...


def _codes(y_true, y_pred, labels) -> tuple[np.ndarray, np.ndarray, int]:
    """Both label arrays as indices into ``labels`` (-1 outside it); ``labels=None``: the sorted union."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.union1d(y_true, y_pred) if labels is None else np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]

    def code(y: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(ordered, y), 0, len(labels) - 1)
        return np.where(ordered[pos] == y, order[pos], -1)

    return code(y_true), code(y_pred), len(labels)


def macro_f1(y_true, y_pred, labels: Sequence | np.ndarray | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (the task's fixed label set).

    A class of ``labels`` with no true and no predicted item scores 0 (``zero_division=0``), so a fold
    that lacks a class is not scored over fewer classes. ``labels=None`` uses the classes present in
    ``y_true`` or ``y_pred`` (scikit-learn's default), for callers without a label set.

    The value is ``f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)`` bit for bit
    (the same counts and the same float operations: ``2·TP / (true + predicted)``, then the mean; tested),
    computed from ``np.bincount`` because scikit-learn's input validation costs ~5 ms a call, and a run
    scores every (layer, probe, fold) in one process.
    """
    t, p, n = _codes(y_true, y_pred, labels)
    tp = np.bincount(t[(t == p) & (t >= 0)], minlength=n).astype(np.float64)
    denom = 1.0 * np.bincount(t[t >= 0], minlength=n).astype(np.float64) + np.bincount(p[p >= 0], minlength=n)
    f1 = np.zeros(n)
    np.divide(2.0 * tp, denom, out=f1, where=denom != 0)
    return float(np.nanmean(f1)) if n else float("nan")


def accuracy(y_true, y_pred, labels: Sequence | np.ndarray | None = None) -> float:
    """Fraction of correct predictions (``labels`` is accepted for the scorer signature and unused);
    ``accuracy_score`` bit for bit."""
    return float(np.average(np.asarray(y_true) == np.asarray(y_pred)))


def nmi(y_true, clusters, labels: Sequence | np.ndarray | None = None) -> float:
    """Normalised mutual information (arithmetic mean normalisation) between labels and clusters."""
    return float(normalized_mutual_info_score(y_true, clusters))


def ami(y_true, clusters, labels: Sequence | np.ndarray | None = None) -> float:
    """Mutual information adjusted for chance (Vinh et al., 2010): 0 in expectation for random clusters."""
    return float(adjusted_mutual_info_score(y_true, clusters))


PROBE_SCORERS: dict[str, Scorer] = {"macro_f1": macro_f1, "accuracy": accuracy}
"""Per-fold scorers of the classifier probes (one row per (layer, probe, fold, name))."""
CLUSTER_SCORERS: dict[str, Scorer] = {"nmi": nmi, "ami": ami}
"""Per-fold scorers of the k-means clusters (``probe="kmeans"``)."""
OOF_SCORERS: dict[str, Scorer] = {"macro_f1_oof": macro_f1}
"""Out-of-fold scorers: predictions pooled over the folds of one repeat (one row per repeat)."""
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("macro_f1", "macro_f1_oof", "accuracy", "nmi", "parse_rate"), (0.0, 1.0)),
    "ami": (-np.inf, 1.0),  # below 0 when clusters agree less than chance
    "r2": (-np.inf, 1.0),  # the cue probes' (analysis/cues.py)
    "pearson": (-1.0, 1.0),
}
"""The values each metric can take: a value outside its range (a hand-edited or damaged file) is no score."""


def out_of_range(metric, value) -> np.ndarray:
    """Which ``value`` lies outside its ``metric``'s :data:`METRIC_RANGES` (metrics without a range: never)."""
    lows = np.array([METRIC_RANGES.get(str(m), (-np.inf, np.inf))[0] for m in metric], dtype=float)
    highs = np.array([METRIC_RANGES.get(str(m), (-np.inf, np.inf))[1] for m in metric], dtype=float)
    values = np.asarray(value, dtype=float)
    return (values < lows) | (values > highs)


def kmeans_clusters(X_train: np.ndarray, X_test: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """Cluster index of every test item: k-means with k = ``n_classes``, scaler and centres fitted on
    ``X_train`` only, then each ``X_test`` row assigned to its nearest centre."""
    # One dtype on both sides: k-means rejects test data whose dtype differs from its centres.
    X_train, X_test = np.asarray(X_train, dtype=np.float64), np.asarray(X_test, dtype=np.float64)
    clusterer = make_pipeline(StandardScaler(), KMeans(n_classes, n_init=KMEANS_N_INIT, random_state=seed))
    return clusterer.fit(X_train).predict(X_test)
