"""Analysis stage: summaries over folds, best layers (of the primary probe) and depth curves, honest
statistics (selection-aware permutation tests, empirical chance), the analyses that read stored
features (planned, then executed: :mod:`.plan`, contract in :mod:`.contract`) and their figures. The
report that renders all of it is the layer above (:mod:`speechprobe.report`).

Files an analysed run directory gains (schemas in :mod:`.selection`): ``permutation.csv``, ``chance.csv``,
``analysis.json``, ``figures/*.png|svg``, the layer analyses' ``fingerprints.csv``, ``similarity.csv``,
``mdl.csv``, the cue analyses' ``cues.csv``, ``erasure.csv``, ``erasure_summary.csv``, ``all_layers.csv``,
``all_layers_summary.csv`` (:mod:`.cues`, :mod:`.erasure`, :mod:`.layer_weights`) and ``analyses/*.json``
(the hand-off to the report, :mod:`.outputs`). Every one of them runs through the registry (:mod:`.registry`).
"""

from __future__ import annotations

from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit, register
from .curves import (
    CURVE_RULE,
    SHAPES,
    baseline_gain,
    curve_shapes,
    fit_curve_shape,
    paralinguistic_summary,
    relative_depth,
)
from .fingerprints import FINGERPRINT_COLUMNS, fingerprint
from .inputs import store_loader
from .mdl import MDL_COLUMNS, online_code
from .outputs import AnalysisOutput, FigureNote, read_outputs
from .plan import analyse, analyse_features, execute, plan
from .primary import DEFAULT_PRIMARY_PROBE, primary_best, primary_probe, secondary_best
from .registry import registered
from .selection import CHANCE_COLUMNS, PERMUTATION_COLUMNS
from .similarity import SIMILARITY_COLUMNS, cka_matrix, debiased_cka, mutual_knn
from .stats import benjamini_hochberg, holm, label_permuter, permutation_scheme, selection_test
from .summary import (
    best_layers,
    best_table,
    chance_levels,
    read_results,
    summarize,
    summarize_run,
)

__all__ = [
    "FINGERPRINT_COLUMNS",
    "MDL_COLUMNS",
    "SIMILARITY_COLUMNS",
    "AnalysisOutput",
    "FigureNote",
    "cka_matrix",
    "debiased_cka",
    "fingerprint",
    "mutual_knn",
    "online_code",
    "read_outputs",
    "CHANCE_COLUMNS",
    "CURVE_RULE",
    "DEFAULT_PRIMARY_PROBE",
    "PERMUTATION_COLUMNS",
    "SHAPES",
    "Analysis",
    "AnalysisResult",
    "AnalysisSettings",
    "Figure",
    "Unit",
    "analyse",
    "analyse_features",
    "baseline_gain",
    "benjamini_hochberg",
    "best_layers",
    "best_table",
    "chance_levels",
    "curve_shapes",
    "execute",
    "fit_curve_shape",
    "holm",
    "label_permuter",
    "paralinguistic_summary",
    "permutation_scheme",
    "plan",
    "primary_best",
    "primary_probe",
    "register",
    "registered",
    "secondary_best",
    "selection_test",
    "read_results",
    "relative_depth",
    "store_loader",
    "summarize",
    "summarize_run",
]
