"""An interval over cross-validation folds that accounts for the training data the folds share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def fold_interval(values: Sequence[float], n_train: float, n_test: float, level: float = 0.95) -> tuple[float, ...]:
    """Mean and ``level`` interval ``(mean, low, high)`` of a per-fold quantity (a score or a paired difference).

    Folds share training data, so their scores are positively correlated and the plain t interval is too
    narrow. This is the corrected resampled t (Nadeau & Bengio, 2003): variance ``(1/k + n_test/n_train)·s²``
    over ``k`` folds, ``t`` with ``k − 1`` degrees of freedom. NaN folds are ignored; fewer than two finite
    folds give a NaN interval.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    k = len(v)
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * np.sqrt((1 / k + n_test / max(n_train, 1)) * v.var(ddof=1)))
    return mean, mean - half, mean + half


def fold_sizes(folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Mean training and test fold sizes."""
    return float(np.mean([len(a) for a, _ in folds])), float(np.mean([len(b) for _, b in folds]))
