"""Probe scores under shuffled labels: the KNN re-vote reproduces the probe exactly, F1 matches scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from speechprobe.probes import make_folds, make_probe
from speechprobe.probes.null import FittedNull, KNNNull, macro_f1_batch


def _data(seed: int, dim: int, ties: bool, n: int = 60, n_layers: int = 3):
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b", "c"])[np.arange(n) % 3]
    X = rng.normal(size=(n, n_layers, dim)).astype(np.float32)
    if ties:  # coarse values and repeated rows: equal distances at the k-th neighbour, and 2-2-1 vote ties
        X = np.round(X)
        X[1::4] = X[::4][: len(X[1::4])]
    return X, y


@pytest.mark.parametrize(("dim", "ties"), [(3, False), (3, True), (40, False), (40, True)])
def test_knn_revote_reproduces_the_probe_predictions(dim: int, ties: bool) -> None:
    """dim 3: scikit-learn's k-d tree; dim 40: its brute-force path (a different tie-breaking code)."""
    X, y = _data(dim, dim, ties)
    folds = make_folds(y, None, 4, 0)
    classes, codes = np.unique(y, return_inverse=True)
    null = KNNNull("knn", X, folds, len(classes))
    rng = np.random.default_rng(1)
    shuffled = np.stack([codes, rng.permutation(codes), rng.permutation(codes)])
    vote_ties = 0
    for k, (train, test) in enumerate(folds):
        pred = null.predict(shuffled, k)
        for b, row in enumerate(shuffled):
            for layer in range(X.shape[1]):
                probe = make_probe("knn").fit(X[train, layer], classes[row[train]])
                np.testing.assert_array_equal(classes[pred[b, layer]], probe.predict(X[test, layer]))
        votes = np.stack([(shuffled[0][train][null.neighbours[k]] == c).sum(-1) for c in range(3)], -1)
        vote_ties += int(((votes == votes.max(-1, keepdims=True)).sum(-1) > 1).sum())
    if ties:
        assert vote_ties > 0  # the tie rule was exercised


def test_knn_revote_with_a_one_class_training_fold() -> None:
    X, y = _data(0, 4, False)
    folds = make_folds(y, None, 3, 0)
    null = KNNNull("knn", X, folds, 3)
    codes = np.zeros(len(y), dtype=int)
    codes[folds[0][1]] = 2  # fold 0 trains on class 0 only
    assert (null.predict(codes[None], 0) == 0).all()


def test_macro_f1_batch_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, (5, 30))
    true[0] = rng.integers(0, 2, 30)  # classes 2 and 3 absent from the truth
    pred = rng.integers(0, 4, (5, 3, 30))
    pred[0, 0] = rng.integers(0, 2, 30)  # ... and from this prediction
    present = macro_f1_batch(true, pred, 4)
    fixed = macro_f1_batch(true, pred, 4, fixed_labels=True)
    for b in range(5):
        for layer in range(3):
            t, p = true[b], pred[b, layer]
            assert present[b, layer] == pytest.approx(f1_score(t, p, average="macro", zero_division=0), abs=1e-15)
            want = f1_score(t, p, labels=range(4), average="macro", zero_division=0)
            assert fixed[b, layer] == pytest.approx(want, abs=1e-15)
    assert fixed[0, 0] < present[0, 0]


def test_fitted_null_refits_the_probe_per_shuffle() -> None:
    X, y = _data(2, 3, False, n=30, n_layers=2)
    folds = make_folds(y, None, 3, 0)
    classes, codes = np.unique(y, return_inverse=True)
    null = FittedNull("linear", X, folds, 3)
    shuffled = np.stack([codes, np.random.default_rng(0).permutation(codes)])
    scores = null.scores(shuffled)
    assert scores.shape == (2, 2) and not null.exact_cheap
    for b, row in enumerate(shuffled):
        for layer in range(2):
            per_fold = [
                f1_score(
                    row[test],
                    make_probe("linear").fit(X[train, layer], row[train]).predict(X[test, layer]),
                    average="macro",
                    zero_division=0,
                )
                for train, test in folds
            ]
            assert scores[b, layer] == pytest.approx(np.mean(per_fold), abs=1e-12)
