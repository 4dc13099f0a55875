"""Cross-validation folds: stratified, and grouped (speaker/session) when groups are given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..errors import ConfigError

Fold = tuple[np.ndarray, np.ndarray]


def make_folds(
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    n_folds: int = 5,
    seed: int = 0,
) -> list[Fold]:
    """``(train_idx, test_idx)`` pairs; no group is ever on both sides of a fold.

    Uses shuffled, seeded ``StratifiedGroupKFold`` when ``groups`` are given, else ``StratifiedKFold``.
    """
    y = np.asarray(labels)
    if n_folds < 2:
        raise ConfigError(f"n_folds is {n_folds}; use 2 or more folds")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ConfigError(f"probing needs at least 2 classes, found {len(classes)}; check the task labels")
    for cls, count in zip(classes, counts):
        if count < n_folds:
            raise ConfigError(
                f"class {str(cls)!r} has {count} items, fewer than n_folds={n_folds}; lower n_folds or add items"
            )
    X = np.zeros((len(y), 1))
    if groups is None:
        return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(X, y))
    g = np.asarray(groups)
    if len(g) != len(y):
        raise ConfigError(f"got {len(g)} groups for {len(y)} labels; give one group per item")
    n_groups = len(np.unique(g))
    if n_groups < n_folds:
        raise ConfigError(f"only {n_groups} distinct groups for n_folds={n_folds}; lower n_folds or drop groups")
    return list(StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed).split(X, y, g))
