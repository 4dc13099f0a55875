"""Cross-validation plans: stratified k-fold (grouped when groups are given), leave-one-group-out,
repeated cross-validation, and the per-fold class coverage recorded in manifest.json.

Fold ids: repeat ``r`` of a ``K``-fold plan holds folds ``r * K + k`` (``k = 0..K-1``); every repeat
is a partition of the items, so each item is predicted exactly once per repeat (the out-of-fold
predictions). Repeat 0 uses ``seed`` itself, so a one-repeat plan is the plan of earlier versions;
repeat ``r > 0`` uses a seed drawn from ``SeedSequence([seed, r])``.

Items without a group (an empty string or None among grouped items, e.g. Dynamic-SUPERB rows whose
file name does not match the group pattern) each form a group of their own: lumping them into one
shared "unknown" group would put them all on one side of every fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

from ..errors import ConfigError

Fold = tuple[np.ndarray, np.ndarray]
CV_SCHEMES = ("kfold", "logo")


def normalise_groups(groups: Sequence | np.ndarray | None, n: int) -> tuple[np.ndarray | None, int]:
    """``(groups as str, number of items that had none)``; items without a group get a group of their own.

    Returns ``(None, 0)`` when no item has a group (ungrouped folds).
    """
    if groups is None:
        return None, 0
    g = np.array(["" if x is None else str(x) for x in groups], dtype=object)
    if len(g) != n:
        raise ConfigError(f"got {len(g)} groups for {n} labels; give one group per item")
    empty = g == ""
    if empty.all():
        return None, 0
    g[empty] = [f"\u2205item{i}" for i in np.flatnonzero(empty)]  # "∅item<i>": one group per such item
    return g.astype(str), int(empty.sum())


def groups_per_class(labels: Sequence | np.ndarray, groups: Sequence | np.ndarray) -> dict[str, int]:
    """Number of distinct groups holding at least one item of each class (groups already normalised)."""
    y, g = np.asarray(labels).astype(str), np.asarray(groups).astype(str)
    return {str(c): len(np.unique(g[y == c])) for c in np.unique(y)}


def min_groups_needed(scheme: str, n_folds: int) -> int:
    """Groups each class needs: ``n_folds`` for grouped k-fold (the class can then be in every test
    fold), 2 for leave-one-group-out (the class stays in training when one of its groups is held out)."""
    return 2 if scheme == "logo" else n_folds


def group_shortfall(labels, groups, n_folds: int, scheme: str = "kfold") -> dict[str, int]:
    """Classes with fewer groups than ``scheme`` needs, with their group counts (empty when none)."""
    g, _ = normalise_groups(groups, len(labels))
    if g is None:
        return {}
    need = min_groups_needed(scheme, n_folds)
    return {c: n for c, n in groups_per_class(labels, g).items() if n < need}


@dataclass(frozen=True)
class CVPlan:
    """The folds of a run: ``repeats`` x ``n_splits`` ``(train_idx, test_idx)`` pairs, fold id ``r * n_splits + k``."""

    folds: list[Fold]
    n_splits: int
    repeats: int
    scheme: str  # stratified-kfold, stratified-group-kfold or leave-one-group-out

    def repeat_of(self, fold: int) -> int:
        return fold // self.n_splits

    def fold_of(self, n: int) -> np.ndarray:
        """``(repeats, n)``: the fold id that holds each item out, per repeat."""
        out = np.zeros((self.repeats, n), dtype=np.int32)
        for j, (_, test) in enumerate(self.folds):
            out[self.repeat_of(j), test] = j
        return out

    @property
    def test_train_ratio(self) -> float:
        """Mean test size over mean training size: the ``n2 / n1`` of the corrected resampled t."""
        n_test = np.mean([len(test) for _, test in self.folds])
        n_train = np.mean([len(train) for train, _ in self.folds])
        return float(n_test / n_train)

    def coverage(self, labels: Sequence | np.ndarray) -> list[dict]:
        """Per fold: its id, repeat, sizes, and the classes absent from its training or test part."""
        y = np.asarray(labels).astype(str)
        classes = np.unique(y)
        out = []
        for j, (train, test) in enumerate(self.folds):
            out.append(
                {
                    "fold": j,
                    "repeat": self.repeat_of(j),
                    "n_train": len(train),
                    "n_test": len(test),
                    "missing_train": [str(c) for c in np.setdiff1d(classes, y[train])],
                    "missing_test": [str(c) for c in np.setdiff1d(classes, y[test])],
                }
            )
        return out

    def describe(self, labels, groups=None) -> dict:
        """The plan for manifest.json: scheme, sizes, groups per class, ratio and per-fold coverage."""
        y = np.asarray(labels).astype(str)
        g, singletons = normalise_groups(groups, len(y))
        cover = self.coverage(y)
        return {
            "scheme": self.scheme,
            "n_splits": self.n_splits,
            "repeats": self.repeats,
            "n_folds_total": len(self.folds),
            "grouped": g is not None,
            "n_groups": int(len(np.unique(g))) if g is not None else None,
            "singleton_groups": singletons,
            "groups_per_class": groups_per_class(y, g) if g is not None else None,
            "test_train_ratio": self.test_train_ratio,
            "folds_missing_test_class": sum(bool(f["missing_test"]) for f in cover),
            "folds_missing_train_class": sum(bool(f["missing_train"]) for f in cover),
            "folds": cover,
        }


def _repeat_seed(seed: int, repeat: int) -> int:
    if repeat == 0:
        return seed
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


def _check(y: np.ndarray, g: np.ndarray | None, n_folds: int, repeats: int, scheme: str) -> None:
    if scheme not in CV_SCHEMES:
        raise ConfigError(f"unknown cross-validation scheme {scheme!r}; choose from {', '.join(CV_SCHEMES)}")
    if repeats < 1:
        raise ConfigError(f"repeats is {repeats}; use 1 or more")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ConfigError(f"probing needs at least 2 classes, found {len(classes)}; check the task labels")
    if scheme == "logo":
        if g is None:
            raise ConfigError("leave-one-group-out needs groups; give a group per item or use k-fold")
        if repeats > 1:
            raise ConfigError("leave-one-group-out has one partition only; use repeats=1")
    elif n_folds < 2:
        raise ConfigError(f"n_folds is {n_folds}; use 2 or more folds")
    else:
        for cls, count in zip(classes, counts):
            if count < n_folds:
                raise ConfigError(
                    f"class {str(cls)!r} has {count} items, fewer than n_folds={n_folds}; lower n_folds or add items"
                )
    if g is not None:
        need = min_groups_needed(scheme, n_folds)
        short = {c: n for c, n in groups_per_class(y, g).items() if n < need}
        if short:
            listed = ", ".join(f"{c!r}: {n}" for c, n in sorted(short.items(), key=lambda kv: kv[1]))
            raise ConfigError(
                f"{len(short)} class(es) have fewer than {need} groups ({listed}); "
                f"lower n_folds, use scheme='logo', or drop the groups (speaker leakage)"
            )


def make_cv(
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    n_folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
    scheme: str = "kfold",
) -> CVPlan:
    """The cross-validation plan: no group is ever on both sides of a fold.

    ``scheme="kfold"``: shuffled, seeded ``StratifiedGroupKFold`` when ``groups`` are given (every class
    needs at least ``n_folds`` groups), else ``StratifiedKFold``; ``repeats`` reshuffled partitions.
    ``scheme="logo"``: ``LeaveOneGroupOut`` (one fold per group; every class needs 2 groups).
    """
    y = np.asarray(labels)
    g, _ = normalise_groups(groups, len(y))
    _check(y, g, n_folds, repeats, scheme)
    X = np.zeros((len(y), 1))
    if scheme == "logo":
        folds = list(LeaveOneGroupOut().split(X, y, g))
        return CVPlan(folds, len(folds), 1, "leave-one-group-out")
    folds: list[Fold] = []
    for r in range(repeats):
        s = _repeat_seed(seed, r)
        if g is None:
            folds += list(StratifiedKFold(n_folds, shuffle=True, random_state=s).split(X, y))
        else:
            folds += list(StratifiedGroupKFold(n_folds, shuffle=True, random_state=s).split(X, y, g))
    return CVPlan(folds, n_folds, repeats, "stratified-kfold" if g is None else "stratified-group-kfold")


def make_folds(
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str] | np.ndarray | None = None,
    n_folds: int = 5,
    seed: int = 0,
) -> list[Fold]:
    """``(train_idx, test_idx)`` pairs of one k-fold partition (:func:`make_cv` with one repeat)."""
    return make_cv(labels, groups, n_folds, seed).folds
