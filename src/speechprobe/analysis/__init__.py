"""Analysis stage: summaries over folds, best layers, chance levels and layer-curve figures."""

from __future__ import annotations

from .plots import plot_layer_curves
from .summary import (
    best_layers,
    best_table,
    chance_levels,
    read_results,
    summarize,
    summarize_run,
)

__all__ = [
    "best_layers",
    "best_table",
    "chance_levels",
    "plot_layer_curves",
    "read_results",
    "summarize",
    "summarize_run",
]
