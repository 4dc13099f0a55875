"""Analysis stage: summaries over folds, best layers and depth curves, honest statistics
(chance, permutation tests, control-task selectivity), figures and the run report.

Files an analysed run directory gains (schemas in :mod:`.features` and :mod:`.report`):
``permutation.csv``, ``selectivity.csv``, ``analysis.json``, ``figures/*.png|svg``, the layer analyses'
``fingerprints.csv``, ``similarity.csv``, ``mdl.csv`` and ``analyses/*.json``,
``main_table.csv``, ``main_table.tex``, ``report.md`` and ``report.html``.
"""

from __future__ import annotations

from .curves import (
    CURVE_RULE,
    SHAPES,
    baseline_gain,
    curve_shapes,
    fit_curve_shape,
    paralinguistic_summary,
    relative_depth,
)
from .features import (
    PERMUTATION_COLUMNS,
    SELECTIVITY_COLUMNS,
    analyse_features,
    permutation_record,
    selectivity_records,
    store_loader,
)
from .fingerprints import FINGERPRINT_COLUMNS, depth_fingerprints, fingerprint
from .mdl import MDL_COLUMNS, mdl_probes, online_code
from .outputs import AnalysisOutput, FigureNote, read_outputs
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
from .similarity import SIMILARITY_COLUMNS, cka_matrix, debiased_cka, layer_similarity, mutual_knn
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
    "FINGERPRINT_COLUMNS",
    "MDL_COLUMNS",
    "SIMILARITY_COLUMNS",
    "AnalysisOutput",
    "FigureNote",
    "cka_matrix",
    "debiased_cka",
    "depth_fingerprints",
    "fingerprint",
    "layer_similarity",
    "mdl_probes",
    "mutual_knn",
    "online_code",
    "read_outputs",
    "CURVE_RULE",
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
    "selectivity_records",
    "store_loader",
    "summarize",
    "summarize_run",
    "umap_available",
    "write_main_table",
]
