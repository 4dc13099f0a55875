"""Analysis stage: summaries over folds, best layers (of the primary probe) and depth curves, honest
statistics (selection-aware permutation tests, empirical chance), the analyses that read stored
features (planned, then executed: :mod:`.plan`, contract in :mod:`.contract`), figures and the report.

Files an analysed run directory gains (schemas in :mod:`.selection` and :mod:`.report`):
``permutation.csv``, ``chance.csv``, ``analysis.json``, ``figures/*.png|svg``,
``main_table.csv``, ``main_table.tex``, ``report.md`` and ``report.html``; from the cue analyses
(:mod:`.cues`, :mod:`.erasure`, :mod:`.layer_weights`): ``cues.csv``, ``erasure.csv``,
``erasure_summary.csv``, ``all_layers.csv`` and ``all_layers_summary.csv``.
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
from .inputs import store_loader
from .plan import analyse_features, execute, plan
from .plots import (
    plot_best_heatmap,
    plot_embedding,
    plot_layer_curves,
    plot_layer_heatmaps,
    plot_tsne,
    plot_umap,
    plot_zeroshot_scatter,
    umap_available,
)
from .primary import DEFAULT_PRIMARY_PROBE, primary_best, primary_probe, secondary_best
from .registry import registered
from .report import MAIN_TABLE_COLUMNS, build_report, load_run, main_table, main_table_latex, write_main_table
from .selection import CHANCE_COLUMNS, PERMUTATION_COLUMNS
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
    "CHANCE_COLUMNS",
    "CURVE_RULE",
    "DEFAULT_PRIMARY_PROBE",
    "MAIN_TABLE_COLUMNS",
    "PERMUTATION_COLUMNS",
    "SHAPES",
    "Analysis",
    "AnalysisResult",
    "AnalysisSettings",
    "Figure",
    "Unit",
    "analyse_features",
    "baseline_gain",
    "benjamini_hochberg",
    "best_layers",
    "best_table",
    "build_report",
    "chance_levels",
    "curve_shapes",
    "execute",
    "fit_curve_shape",
    "holm",
    "label_permuter",
    "load_run",
    "main_table",
    "main_table_latex",
    "paralinguistic_summary",
    "permutation_scheme",
    "plan",
    "primary_best",
    "primary_probe",
    "register",
    "registered",
    "secondary_best",
    "selection_test",
    "plot_best_heatmap",
    "plot_embedding",
    "plot_layer_curves",
    "plot_layer_heatmaps",
    "plot_tsne",
    "plot_umap",
    "plot_zeroshot_scatter",
    "read_results",
    "relative_depth",
    "store_loader",
    "summarize",
    "summarize_run",
    "umap_available",
    "write_main_table",
]
