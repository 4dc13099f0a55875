"""Honest statistics for probes: permutation tests against shuffled labels and control-task selectivity.

Both tests keep the cross-validation folds of the real task (``make_folds`` on the real labels and
groups, the same seed as the probe runner, so the observed score equals the one in results.csv) and
shuffle only the labels, with a *restricted* permutation that respects the fold and speaker structure:

``within-fold``  (no groups) labels are permuted among the items of each test fold. Every train and
                 test split keeps its exact class counts, so the null distribution is the probe's
                 score on a task with the same stratification but no link between features and labels.
``within-group`` (groups, and the label varies inside at least one group, e.g. every speaker reads
                 every emotion) labels are permuted among the clips of each group (speaker). Groups
                 never cross folds, so fold class counts are kept; the null keeps the
                 speaker → label-mix association and removes only the clip-level link. Groups whose
                 clips all share one label keep it (a conservative null for them).
``group-level``  (groups, and every group carries a single label, e.g. gender by speaker) whole groups
                 swap labels with other groups of the same test fold (all groups when some fold holds
                 fewer than two), so a speaker's clips always share one label, as in the real task.

The control task of Hewitt & Liang (2019) gives each word *type* a random label so that a probe can
only score by memorising types. Held-out speakers (or held-out clips when folds are not grouped)
never recur between train and test, so a "random label per speaker" control would be pure chance
and would also change the class balance. We therefore use the restricted permutation above as the
control task: same label distribution, same fold structure, same probe and hyper-parameters; one
control labelling (or the mean over ``n_repeats``) shared by every layer. Selectivity is
``real − control`` per layer; the control score is the probe's empirical chance on these data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from ..errors import ConfigError
from ..probes import macro_f1, make_folds, make_probe

Fold = tuple[np.ndarray, np.ndarray]
SCHEMES = ("within-fold", "within-group", "group-level")


def _as_groups(groups: Sequence[str] | np.ndarray | None, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    g = np.asarray(groups).astype(str)
    if len(g) != n:
        raise ConfigError(f"got {len(g)} groups for {n} labels; give one group per item")
    return g if len({x for x in g if x}) > 0 else None


def permutation_scheme(labels: Sequence[str] | np.ndarray, groups: Sequence[str] | np.ndarray | None) -> str:
    """Which restricted permutation applies (see the module docstring)."""
    y = np.asarray(labels)
    g = _as_groups(groups, len(y))
    if g is None:
        return "within-fold"
    per_group = pd.Series(y).groupby(g).nunique()
    return "group-level" if bool((per_group <= 1).all()) else "within-group"


def label_permuter(
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None,
    folds: Sequence[Fold],
) -> tuple[str, Callable[[np.random.Generator], np.ndarray]]:
    """``(scheme, permute)``: ``permute(rng)`` returns one restricted permutation of ``labels``."""
    y = np.asarray(labels)
    g = _as_groups(groups, len(y))
    scheme = permutation_scheme(y, g)
    if scheme == "within-fold":
        blocks = [np.asarray(test) for _, test in folds]
        covered = np.concatenate(blocks) if blocks else np.array([], dtype=int)
        rest = np.setdiff1d(np.arange(len(y)), covered)
        if len(rest):
            blocks.append(rest)
        return scheme, lambda rng: _permute_blocks(y, blocks, rng)
    codes, uniq = pd.factorize(pd.Series(g), sort=True)
    members = [np.flatnonzero(codes == k) for k in range(len(uniq))]
    if scheme == "within-group":
        return scheme, lambda rng: _permute_blocks(y, members, rng)
    group_label = np.array([y[m[0]] for m in members], dtype=object)
    fold_of_group = np.full(len(members), -1)
    for k, (_, test) in enumerate(folds):
        fold_of_group[np.unique(codes[np.asarray(test)])] = k
    pools = [np.flatnonzero(fold_of_group == k) for k in np.unique(fold_of_group)]
    if any(len(p) < 2 for p in pools):
        pools = [np.arange(len(members))]

    def permute(rng: np.random.Generator) -> np.ndarray:
        new_group_label = group_label.copy()
        for pool in pools:
            new_group_label[pool] = group_label[rng.permutation(pool)]
        out = y.copy()
        for k, m in enumerate(members):
            out[m] = new_group_label[k]
        return out

    return scheme, permute


def _permute_blocks(y: np.ndarray, blocks: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    out = y.copy()
    for block in blocks:
        out[block] = y[rng.permutation(block)]
    return out


def cv_score(X: np.ndarray, y: np.ndarray, folds: Sequence[Fold], probe: str, seed: int) -> float:
    """Mean Macro-F1 over ``folds`` of a fresh ``make_probe(probe, seed)`` per fold (as the probe runner)."""
    X = np.asarray(X)
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in folds:
            if len(np.unique(y[train])) < 2:  # a permuted fold can only lose classes under group-level swaps
                pred = np.full(len(test), y[train][0] if len(train) else y[test][0])
            else:
                pred = make_probe(probe, seed).fit(X[train], y[train]).predict(X[test])
            scores.append(macro_f1(y[test], pred, labels=np.unique(y)))  # the task's fixed label set
    return float(np.mean(scores))


def _scores_batch(
    tasks: list[tuple[np.ndarray, np.ndarray]], folds: Sequence[Fold], probe: str, seed: int
) -> list[float]:
    # Single-threaded BLAS/OpenMP (as the probe runner): results do not depend on n_jobs.
    with threadpool_limits(1):
        return [cv_score(X, y, folds, probe, seed) for X, y in tasks]


def _scores(
    tasks: list[tuple[np.ndarray, np.ndarray]], folds: Sequence[Fold], probe: str, seed: int, n_jobs: int
) -> list[float]:
    """``cv_score`` of every ``(X, y)`` in ``tasks``, in order, over ``n_jobs`` workers."""
    if n_jobs == 1 or len(tasks) < 2:
        return _scores_batch(tasks, folds, probe, seed)
    n = min(len(tasks), n_jobs if n_jobs > 0 else len(tasks))
    chunks = [tasks[i::n] for i in range(n)]
    parts = Parallel(n_jobs=n)(delayed(_scores_batch)(c, folds, probe, seed) for c in chunks)
    out: list[float] = [0.0] * len(tasks)
    for i, part in enumerate(parts):
        out[i::n] = part
    return out


def _check(features: np.ndarray, ndim: int, labels) -> np.ndarray:
    if features.ndim != ndim:
        want = "(items, dims)" if ndim == 2 else "(items, layers, dims)"
        raise ConfigError(f"features must be {want}, got shape {features.shape}")
    y = np.asarray(labels).astype(str)
    if len(y) != features.shape[0]:
        raise ConfigError(f"got {len(y)} labels for {features.shape[0]} feature rows; give one label per item")
    return y


def permutation_test(
    features_2d: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    probe: str = "knn",
    n_permutations: int = 100,
    n_folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> tuple[float, np.ndarray, float]:
    """Permutation test of one layer's probe score against restricted label shuffles.

    Returns ``(observed, null_scores, p_value)``: ``observed`` is the mean Macro-F1 over the real
    task's folds, ``null_scores`` the same statistic for ``n_permutations`` shuffles (scheme: see
    :func:`permutation_scheme`), and ``p = (1 + #{null >= observed}) / (1 + n_permutations)``.
    """
    if n_permutations < 1:
        raise ConfigError(f"n_permutations is {n_permutations}; use 1 or more")
    X = np.asarray(features_2d)
    y = _check(X, 2, labels)
    make_probe(probe, seed)
    g = _as_groups(groups, len(y))
    folds = make_folds(y, g, n_folds, seed)
    _, permute = label_permuter(y, g, folds)
    rng = np.random.default_rng(seed)
    shuffles = [permute(rng) for _ in range(n_permutations)]
    observed, *null = _scores([(X, y), *[(X, ys) for ys in shuffles]], folds, probe, seed, n_jobs)
    null = np.asarray(null, dtype=float)
    p = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + n_permutations)
    return observed, null, float(p)


def control_selectivity(
    features_3d: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    probe: str = "knn",
    n_folds: int = 5,
    seed: int = 0,
    n_repeats: int = 1,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Hewitt & Liang selectivity per layer: ``DataFrame(layer, real, control, selectivity)``.

    ``real`` is the mean Macro-F1 over the real folds; ``control`` the same probe on the control task
    (restricted label permutation, the same for every layer; mean over ``n_repeats`` control tasks);
    ``selectivity = real - control``.
    """
    if n_repeats < 1:
        raise ConfigError(f"n_repeats is {n_repeats}; use 1 or more")
    X = np.asarray(features_3d)
    y = _check(X, 3, labels)
    make_probe(probe, seed)
    g = _as_groups(groups, len(y))
    folds = make_folds(y, g, n_folds, seed)
    _, permute = label_permuter(y, g, folds)
    rng = np.random.default_rng(seed + 1)  # a different stream from the permutation test's
    controls = [permute(rng) for _ in range(n_repeats)]
    cells = [(layer, k) for layer in range(X.shape[1]) for k in range(1 + n_repeats)]
    targets = [y, *controls]
    scores = _scores([(X[:, layer], targets[k]) for layer, k in cells], folds, probe, seed, n_jobs)
    table = dict(zip(cells, scores))
    rows = []
    for layer in range(X.shape[1]):
        real = table[layer, 0]
        control = float(np.mean([table[layer, k] for k in range(1, 1 + n_repeats)]))
        rows.append({"layer": layer, "real": real, "control": control, "selectivity": real - control})
    return pd.DataFrame(rows, columns=["layer", "real", "control", "selectivity"])
