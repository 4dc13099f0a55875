"""Probe classifiers: scikit-learn estimators that standardise inside, per training fold."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


class ScaledProbe(ClassifierMixin, BaseEstimator):
    """A classifier fitted on standardised features; subclasses supply ``_classifier``."""

    def _classifier(self) -> BaseEstimator:
        raise NotImplementedError

    def _classifier_for(self, y: np.ndarray) -> BaseEstimator:
        """The classifier to fit on training labels ``y`` (by default the same whatever ``y``)."""
        return self._classifier()

    def fit(self, X, y) -> ScaledProbe:
        """Fit the scaler and the classifier on ``X`` ``(n_samples, n_features)`` and ``y``."""
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.pipeline_: Pipeline = make_pipeline(StandardScaler(), self._classifier_for(y)).fit(X, y)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted class for each row of ``X``."""
        X = self._validated(X)
        return self.pipeline_.predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        X = self._validated(X)
        return self.pipeline_.predict_proba(X)

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False)


class _IterativeProbe(ScaledProbe):
    """A probe whose classifier is trained iteratively; exposes its ``n_iter_``."""

    def fit(self, X, y) -> _IterativeProbe:
        super().fit(X, y)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self


class KNNProbe(ScaledProbe):
    """k-nearest-neighbours on standardised features."""

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", metric: str = "euclidean"):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric

    def _classifier(self) -> KNeighborsClassifier:
        return KNeighborsClassifier(n_neighbors=self.n_neighbors, weights=self.weights, metric=self.metric)


def can_validate(y, validation_fraction: float) -> bool:
    """Whether ``MLPClassifier(early_stopping=True)`` can carve its validation split from ``y``.

    scikit-learn holds out ``ceil(fraction * n)`` items, at least 2, and keeps at least one to train on; with
    two classes it stratifies the split (both parts then need both classes, and each class two items).
    """
    _, counts = np.unique(np.asarray(y), return_counts=True)
    n_val = int(np.ceil(validation_fraction * len(y)))
    if n_val < 2 or len(y) - n_val < 1:
        return False
    if len(counts) <= 2:
        return bool(counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts))
    return True


def stops_early(y, early_stopping: bool, validation_fraction: float, min_train: int) -> bool:
    """Whether the MLP trained on labels ``y`` stops early: asked for, at least ``min_train`` training items
    (on fewer the validation part is too small for its accuracy to time the stop; ``docs/statistics.md``),
    and a split :func:`can_validate`. One rule for :class:`MLPProbe` and the torch kernel."""
    return bool(early_stopping and len(y) >= min_train and can_validate(y, validation_fraction))


class MLPProbe(_IterativeProbe):
    """One-hidden-layer MLP (ReLU; adam by default) on standardised features.

    With ``early_stopping`` it is scikit-learn's early stopping: it trains on ``1 - validation_fraction`` of the
    training data (a random split, stratified for two classes) and stops when the accuracy on the held-out
    part has not improved by ``tol`` for 10 epochs, keeping the best epoch's weights. A training part of fewer
    than ``early_stopping_min_train`` items, or too small for that split (:func:`stops_early`), trains without
    it, on the training-loss rule.
    """

    def __init__(
        self,
        hidden_units: int = 256,
        alpha: float = 1e-4,
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        early_stopping: bool = False,
        random_state: int | None = None,
        solver: str = "adam",
        validation_fraction: float = 0.1,
        early_stopping_min_train: int = 0,
    ):
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.solver = solver
        self.validation_fraction = validation_fraction
        self.early_stopping_min_train = early_stopping_min_train

    def _classifier(self, early_stopping: bool | None = None) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=(self.hidden_units,),
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            early_stopping=self.early_stopping if early_stopping is None else early_stopping,
            validation_fraction=self.validation_fraction,
            random_state=self.random_state,
            solver=self.solver,
        )

    def _classifier_for(self, y: np.ndarray) -> MLPClassifier:
        stochastic = self.solver != "lbfgs"  # lbfgs has no epochs to stop early
        early = stochastic and stops_early(
            y, self.early_stopping, self.validation_fraction, self.early_stopping_min_train
        )
        return self._classifier(early_stopping=early)


class LinearProbe(_IterativeProbe):
    """L2-regularised multinomial logistic regression on standardised features."""

    def __init__(self, C: float = 1.0, max_iter: int = 1000):
        self.C = C
        self.max_iter = max_iter

    def _classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=self.max_iter)
