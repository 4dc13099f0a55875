"""Probe stage: scikit-learn probes and their registry, grouped/stratified folds, metrics and the per-layer runner."""

from __future__ import annotations

from ..config import ProbeSettings
from .cv import CVPlan, make_cv, make_folds
from .estimators import KNNProbe, LinearProbe, MLPProbe, ScaledProbe
from .metrics import (
    CLUSTER_SCORERS,
    OOF_SCORERS,
    PROBE_SCORERS,
    accuracy,
    ami,
    macro_f1,
    nmi,
)
from .predictions import OOFPredictions, predictions_path, read_predictions, write_predictions
from .registry import ProbeSpec, make_probe, probe_names, probe_params, probe_spec
from .runner import LayerCV, cross_validate_layers, probe_layers

__all__ = [
    "CLUSTER_SCORERS",
    "OOF_SCORERS",
    "PROBE_SCORERS",
    "CVPlan",
    "KNNProbe",
    "LayerCV",
    "LinearProbe",
    "MLPProbe",
    "OOFPredictions",
    "ProbeSettings",
    "ProbeSpec",
    "ScaledProbe",
    "accuracy",
    "ami",
    "cross_validate_layers",
    "macro_f1",
    "make_cv",
    "make_folds",
    "make_probe",
    "nmi",
    "predictions_path",
    "probe_layers",
    "probe_names",
    "probe_params",
    "probe_spec",
    "read_predictions",
    "write_predictions",
]
