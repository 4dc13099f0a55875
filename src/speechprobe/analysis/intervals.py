"""An interval over cross-validation folds that accounts for the training data the folds share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .summary import corrected_t_halfwidth


def fold_interval(values: Sequence[float], ratio: float, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and ``level`` interval ``(mean, low, high)`` of a per-fold quantity (a score or a paired difference).

    Folds share training data, so their scores are positively correlated and the plain t interval is too
    narrow. This is the corrected resampled t of summary.csv (Nadeau & Bengio, 2003;
    :func:`.summary.corrected_t_halfwidth`) over the ``J`` folds of the run's plan (repeats x folds), with
    ``ratio = n_test / n_train`` (:func:`fold_ratio`). NaN folds are ignored; fewer than two finite folds
    give a NaN interval.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(corrected_t_halfwidth(v.std(ddof=1), len(v), ratio, level))
    return mean, mean - half, mean + half


def fold_ratio(folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean test size over mean training size of ``folds`` (``CVPlan.test_train_ratio`` of the same folds)."""
    n_test = np.mean([len(test) for _, test in folds])
    n_train = np.mean([len(train) for train, _ in folds])
    return float(n_test / max(n_train, 1))
