"""Nested cross-validation (``--tune``): each outer training part chooses a probe's hyper-parameter.

For every outer fold, an inner stratified k-fold (grouped by the same groups; ``INNER_FOLDS`` folds, fewer
when a class has fewer items or groups in that training part) is made on the training part only. The
probe spec's grid (:attr:`.registry.ProbeSpec.grid`) is scored there by fixed-label macro-F1, the best
value (ties: the first in the grid) is refitted on the whole training part, and only then is the outer test part
predicted. The outer test items never influence the choice, so the outer score stays an honest estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV

from ..config import ProbeSettings
from ..errors import ConfigError
from .cv import Fold, groups_per_class, make_cv
from .registry import probe_spec

INNER_FOLDS = 3


def inner_folds_for(y_train: np.ndarray, groups_train: np.ndarray | None) -> int:
    """Inner folds possible on one training part: at most ``INNER_FOLDS``, at most the smallest class
    size, and (grouped) at most the fewest groups of any class."""
    _, counts = np.unique(y_train, return_counts=True)
    n = min(INNER_FOLDS, int(counts.min()))
    if groups_train is not None:
        n = min(n, min(groups_per_class(y_train, groups_train).values()))
    return n


def check_tunable(y: np.ndarray, groups: np.ndarray | None, folds: Sequence[Fold]) -> None:
    """Every outer training part must allow at least 2 inner folds."""
    for j, (train, _) in enumerate(folds):
        n = inner_folds_for(y[train], None if groups is None else groups[train])
        if n < 2:
            raise ConfigError(
                f"--tune: the training part of fold {j} has a class with fewer than 2 items or groups, "
                f"too few for inner folds; lower --folds or run without --tune"
            )


def tuned_predict(
    name: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    groups_train: np.ndarray | None,
    classes: np.ndarray,
    seed: int,
    settings: ProbeSettings,
) -> tuple[np.ndarray, dict]:
    """Predictions for ``X_test`` of probe ``name`` tuned on the training part; and the chosen parameters."""
    spec = probe_spec(name)
    if not spec.grid:
        raise ConfigError(f"--tune has no grid for probe {name!r}")
    inner = make_cv(y_train, groups_train, inner_folds_for(y_train, groups_train), seed).folds
    grid = {param: list(values) for param, values in spec.grid.items()}
    if spec.train_bound in grid:  # e.g. k cannot exceed the smallest inner training part
        room = min(len(train) for train, _ in inner)
        grid[spec.train_bound] = [k for k in grid[spec.train_bound] if k <= room] or [1]
    scorer = make_scorer(f1_score, average="macro", labels=classes, zero_division=0)
    search = GridSearchCV(spec.make(seed, settings), grid, scoring=scorer, cv=inner, n_jobs=1, refit=True)
    search.fit(X_train, y_train)
    params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in search.best_params_.items()}
    return search.predict(X_test), params
