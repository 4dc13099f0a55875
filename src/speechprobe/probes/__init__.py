"""Probe stage: scikit-learn probes, grouped/stratified folds, metrics and the per-layer runner."""

from __future__ import annotations

from .cv import CVPlan, make_cv, make_folds
from .estimators import (
    PROBE_NAMES,
    TUNE_GRIDS,
    KNNProbe,
    LinearProbe,
    MLPProbe,
    ProbeSettings,
    ScaledProbe,
    make_probe,
    probe_params,
)
from .metrics import (
    CLUSTER_SCORERS,
    OOF_SCORERS,
    PROBE_SCORERS,
    accuracy,
    ami,
    cluster_nmi,
    macro_f1,
    nmi,
)
from .predictions import OOFPredictions, predictions_path, read_predictions, write_predictions
from .runner import LayerCV, cross_validate_layers, probe_layers

__all__ = [
    "CLUSTER_SCORERS",
    "OOF_SCORERS",
    "PROBE_NAMES",
    "PROBE_SCORERS",
    "TUNE_GRIDS",
    "CVPlan",
    "KNNProbe",
    "LayerCV",
    "LinearProbe",
    "MLPProbe",
    "OOFPredictions",
    "ProbeSettings",
    "ScaledProbe",
    "accuracy",
    "ami",
    "cluster_nmi",
    "cross_validate_layers",
    "macro_f1",
    "make_cv",
    "make_folds",
    "make_probe",
    "nmi",
    "predictions_path",
    "probe_layers",
    "probe_params",
    "read_predictions",
    "write_predictions",
]
