"""Probe stage: scikit-learn probes, grouped/stratified folds, metrics and the per-layer runner."""

from __future__ import annotations

from .cv import make_folds
from .estimators import (
    PROBE_NAMES,
    KNNProbe,
    LinearProbe,
    MLPProbe,
    ScaledProbe,
    make_probe,
)
from .metrics import accuracy, cluster_nmi, macro_f1
from .runner import probe_layers

__all__ = [
    "PROBE_NAMES",
    "KNNProbe",
    "LinearProbe",
    "MLPProbe",
    "ScaledProbe",
    "accuracy",
    "cluster_nmi",
    "macro_f1",
    "make_folds",
    "make_probe",
    "probe_layers",
]
