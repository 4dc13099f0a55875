"""Probe scores under many label shufflings at once, for permutation nulls.

A permutation test keeps the features and the cross-validation folds and shuffles only the labels.
Scoring a shuffle by refitting every probe on every (layer, fold) would multiply the probing cost by
the number of shuffles; for KNN most of that work does not depend on the labels:

``KNNNull`` (a spec's ``null="revote"``)
    The standardisation (fitted on the training fold's features) and the k nearest training items of
    every test item depend on the features alone. They are taken once per (layer, fold) from the very
    estimator ``make_probe(probe)`` fits (its ``kneighbors``, so scikit-learn's choice among equally
    distant items is kept), and each shuffle only re-counts the votes: the class with the most of the
    k votes wins, a tie goes to the smallest class index, as in ``KNeighborsClassifier.predict``.
    The re-vote of the real labels reproduces the probe's predictions exactly (tested).
``FittedNull`` (``null="refit"``)
    Probes with no such shortcut (MLP, linear) are refitted for every shuffle: scikit-learn on a CPU,
    the probe's batched torch kernel of :mod:`.fast` (when its spec names one) on a GPU. The caller keeps
    their number small with sequential stopping (:func:`speechprobe.analysis.stats.selection_test`).

Every null scores a batch of shufflings ``codes`` ``(P, N)`` (class codes ``0..C-1`` of the sorted label
set, one row per shuffle) and returns ``(P, L)``: per shuffle and layer, the mean over folds of the
fold score, the statistic ``results.csv`` holds per fold. Scores are vectorised over shuffles and layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from ..config import ProbeSettings
from .cv import Fold
from .registry import make_probe, probe_spec

# Upper bound on shuffles x layers x test items x neighbours held at once by the KNN re-vote.
VOTE_BLOCK_ELEMENTS = 1 << 23


def macro_f1_batch(true: np.ndarray, pred: np.ndarray, n_classes: int, fixed_labels: bool = False) -> np.ndarray:
    """Macro-F1 of many predictions at once, as scikit-learn's ``f1_score(average="macro", zero_division=0)``.

    ``true`` ``(P, m)`` and ``pred`` ``(P, L, m)`` hold class codes; returns ``(P, L)``. Per class
    ``F1 = 2·TP / (2·TP + FP + FN)`` (0 when the class is absent from both sides). ``fixed_labels=False``
    averages over the classes present in ``true`` or ``pred`` (scikit-learn's default label set);
    ``True`` averages over all ``n_classes`` (a fixed label set, absent classes scoring 0).
    """
    true = np.asarray(true)[:, None, :]
    total = np.zeros(pred.shape[:2])
    present = np.zeros(pred.shape[:2])
    for c in range(n_classes):
        t, p = true == c, pred == c
        tp = (t & p).sum(-1)
        denom = t.sum(-1) + p.sum(-1)  # 2·TP + FP + FN
        with np.errstate(invalid="ignore", divide="ignore"):
            total += np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
        present += denom > 0
    return total / (n_classes if fixed_labels else np.maximum(present, 1))


class LayerNull:
    """Scores of one ``probe`` on every layer of ``features`` ``(N, L, D)`` and ``folds`` for a batch of label
    shufflings, with the run's seed and probe ``settings``."""

    exact_cheap: bool  # True when a shuffle costs no probe fit

    def __init__(
        self,
        probe: str,
        features: np.ndarray,
        folds: Sequence[Fold],
        n_classes: int,
        seed: int = 0,
        fixed_labels: bool = False,
        device: str | None = None,
        n_jobs: int = 1,
        settings: ProbeSettings | None = None,
    ) -> None:
        make_probe(probe, seed, settings)  # unknown names fail here
        self.features, self.probe, self.seed, self.settings = features, probe, seed, settings
        self.folds = [(np.asarray(tr), np.asarray(te)) for tr, te in folds]
        self.n_classes = n_classes
        self.fixed_labels = fixed_labels
        self.n_layers = features.shape[1]
        self.device = device
        self.n_jobs = n_jobs

    def predict(self, codes: np.ndarray, fold: int) -> np.ndarray:
        """``(P, L, m)`` predicted codes on the test items of ``fold`` for shuffled codes ``(P, N)``."""
        raise NotImplementedError

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """``(P, L)`` mean-over-folds scores for shuffled class codes ``(P, N)``."""
        codes = np.atleast_2d(codes)
        total = np.zeros((len(codes), self.n_layers))
        for k, (_, test) in enumerate(self.folds):
            total += macro_f1_batch(codes[:, test], self.predict(codes, k), self.n_classes, self.fixed_labels)
        return total / len(self.folds)


class KNNNull(LayerNull):
    """Exact KNN scores under shuffled labels from neighbour lists computed once (see the module docstring);
    numpy only, so ``device`` and ``n_jobs`` go unused."""

    exact_cheap = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # neighbours[f]: (L, m_f, k) positions into the training indices of fold f
        self.neighbours = [self._neighbours(train, test) for train, test in self.folds]

    def predict(self, codes: np.ndarray, fold: int) -> np.ndarray:
        train, _ = self.folds[fold]
        neigh = self.neighbours[fold]
        n_layers, m, k = neigh.shape
        votes_of = codes[:, train]  # (P, n_train)
        step = max(1, VOTE_BLOCK_ELEMENTS // max(1, n_layers * m * k))
        out = np.empty((len(codes), n_layers, m), dtype=np.int64)
        for start in range(0, len(codes), step):
            voters = votes_of[start : start + step][:, neigh]  # (p, L, m, k)
            counts = np.stack([(voters == c).sum(-1) for c in range(self.n_classes)], axis=-1)
            out[start : start + step] = counts.argmax(-1)  # first maximum: the smallest class index
        return out

    def _neighbours(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """``(L, m, k)``: per layer, the neighbours the fitted probe uses for each test item."""
        dummy = np.arange(len(train)) % 2  # kneighbors does not depend on the labels
        out = []
        with threadpool_limits(1):
            for layer in range(self.n_layers):
                X_train = np.asarray(self.features[train, layer])
                probe = make_probe(self.probe, self.seed, self.settings).fit(X_train, dummy)
                X_test = probe._validated(np.asarray(self.features[test, layer]))
                scaled = probe.pipeline_[:-1].transform(X_test)
                out.append(probe.pipeline_[-1].kneighbors(scaled, return_distance=False))
        return np.stack(out)


class FittedNull(LayerNull):
    """Scores under shuffled labels by refitting the probe on every (layer, fold) of every shuffle."""

    exact_cheap = False

    def scores(self, codes: np.ndarray) -> np.ndarray:
        codes = np.atleast_2d(codes)
        if self.n_jobs == 1 or len(codes) < 2 or self.device is not None:
            return super().scores(codes)
        from joblib import Parallel, delayed  # shuffles in worker processes; each fit is single-threaded

        return np.concatenate(Parallel(n_jobs=self.n_jobs)(delayed(LayerNull.scores)(self, row) for row in codes))

    def predict(self, codes: np.ndarray, fold: int) -> np.ndarray:
        train, test = self.folds[fold]
        return np.stack([self._predict(train, test, row[train]) for row in codes])

    def _predict(self, train: np.ndarray, test: np.ndarray, y_train: np.ndarray) -> np.ndarray:
        classes = np.unique(y_train)
        if len(classes) == 1:  # a shuffled training fold of one class predicts it everywhere
            return np.full((self.n_layers, len(test)), classes[0])
        if self.device is not None:  # the probe's batched torch kernel, when it has one
            from .fast import fold_predictions, kernel_arguments

            if (kernel := kernel_arguments(self.probe, self.seed, self.settings)) is not None:
                kernels = {self.probe: kernel}
                return fold_predictions(self.features, train, test, y_train, kernels, self.device)[self.probe]
        out = []
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for layer in range(self.n_layers):
                probe = make_probe(self.probe, self.seed, self.settings).fit(self.features[train, layer], y_train)
                out.append(probe.predict(self.features[test, layer]))
        return np.stack(out)


def make_null(probe: str, *args, **kwargs) -> LayerNull:
    """The cheapest exact null for ``probe``, as its spec declares (:class:`KNNNull` for ``"revote"``, else
    :class:`FittedNull`), built from the same arguments: ``probe, features, folds, n_classes, seed,
    fixed_labels, device, n_jobs, settings`` (the run's probe hyper-parameters; default: the defaults)."""
    null = KNNNull if probe_spec(probe).null == "revote" else FittedNull
    return null(probe, *args, **kwargs)
