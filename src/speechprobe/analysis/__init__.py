"""Analysis stage: summaries over folds, best layers and depth curves, honest statistics
(chance, permutation tests, control-task selectivity), figures and the run report.

Files an analysed run directory gains (schemas in :mod:`.features` and :mod:`.report`):
``permutation.csv``, ``selectivity.csv``, ``analysis.json``, ``figures/*.png|svg``,
``main_table.csv``, ``main_table.tex``, ``report.md`` and ``report.html``; from the cue analyses
(:mod:`.cues`, :mod:`.erasure`, :mod:`.layer_weights`): ``cues.csv``, ``erasure.csv``,
``all_layers.csv`` and ``analyses/<name>.json`` (:mod:`.outputs`).
"""

from __future__ import annotations

from .cues import CueSettings, run_cue_probes
from .curves import (
    CURVE_RULE,
    SHAPES,
    baseline_gain,
    curve_shapes,
    fit_curve_shape,
    paralinguistic_summary,
    relative_depth,
)
from .erasure import ErasureSettings, run_erasure
from .features import (
    PERMUTATION_COLUMNS,
    SELECTIVITY_COLUMNS,
    analyse_features,
    permutation_record,
    selectivity_records,
    store_loader,
)
from .layer_weights import LayerWeightSettings, run_layer_weights
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
from .report import MAIN_TABLE_COLUMNS, build_report, load_run, main_table, main_table_latex, write_main_table
from .stats import control_selectivity, label_permuter, permutation_scheme, permutation_test
from .summary import (
    best_layers,
    best_table,
    chance_levels,
    read_results,
    summarize,
    summarize_run,
)

__all__ = [
    "CURVE_RULE",
    "CueSettings",
    "ErasureSettings",
    "LayerWeightSettings",
    "MAIN_TABLE_COLUMNS",
    "PERMUTATION_COLUMNS",
    "SELECTIVITY_COLUMNS",
    "SHAPES",
    "analyse_features",
    "baseline_gain",
    "best_layers",
    "best_table",
    "build_report",
    "chance_levels",
    "control_selectivity",
    "curve_shapes",
    "fit_curve_shape",
    "label_permuter",
    "load_run",
    "main_table",
    "main_table_latex",
    "paralinguistic_summary",
    "permutation_record",
    "permutation_scheme",
    "permutation_test",
    "plot_best_heatmap",
    "plot_embedding",
    "plot_layer_curves",
    "plot_layer_heatmaps",
    "plot_tsne",
    "plot_umap",
    "plot_zeroshot_scatter",
    "read_results",
    "relative_depth",
    "run_cue_probes",
    "run_erasure",
    "run_layer_weights",
    "selectivity_records",
    "store_loader",
    "summarize",
    "summarize_run",
    "umap_available",
    "write_main_table",
]
