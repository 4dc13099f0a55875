"""t-SNE (and UMAP, with umap-learn) of the first, best and last layer of every (model, task).

The best layer is the primary probe's (:func:`speechprobe.analysis.primary.primary_best`), as in
every table. Writes ``figures/tsne_<model>_<task>.png`` (+ ``.svg``) and ``umap_…`` alongside.
"""

from __future__ import annotations

from ..figures.embedding import plot_embedding, umap_available
from .contract import Analysis, AnalysisResult, AnalysisSettings, Figure, Unit
from .display import display_labels, display_map

UMAP_MISSING = "UMAP plots skipped: umap-learn is not installed (pip install 'speechprobe[umap]')"


def layers_to_show(n_layers: int, best: int) -> dict[str, int]:
    """Panel title → layer for the first, best and last layers (shared panels get joined titles)."""
    named: dict[int, list[str]] = {}
    for name, layer in (("first", 0), ("best", best), ("last", n_layers - 1)):
        named.setdefault(layer, []).append(name)
    return {" = ".join(names): layer for layer, names in sorted(named.items())}


def compute(unit: Unit) -> AnalysisResult:
    """The embedding figures of one (model, task)."""
    best, _ = unit.best_layer()
    features = unit.features()
    shown = layers_to_show(features.shape[1], best)
    title = f"{unit.model} · {unit.task}"
    seed, max_points = unit.settings.seed, unit.settings.max_points
    out = AnalysisResult()
    panels = ", ".join(f"{name} = layer {layer}" for name, layer in shown.items())
    methods = [("tsne", "t-SNE")] + ([("umap", "UMAP")] if umap_available() else [])
    labels = display_labels(unit.labels, display_map(unit.task))  # readable class names in the legend
    for method, label in methods:
        try:
            path = unit.figure_path(method)
            path = plot_embedding(features, labels, shown, path, seed, method, max_points, title, unit.settings.n_jobs)
        except (ValueError, ImportError) as e:
            out.notes.append(f"embedding plot skipped for {unit.name}: {e}")
            continue
        caption = (
            f"{label} of {unit.model} on {unit.task}: {panels} (best by the {unit.settings.primary_probe} probe), "
            "standardised (PCA to 50 dimensions when larger), points coloured by label."
        )
        out.figures.append(Figure(path, caption))
    if not umap_available():
        out.notes.append(UMAP_MISSING)
    return out


def _options(settings: AnalysisSettings) -> dict:
    return {"max_points": settings.max_points, "umap": umap_available(), "probe": settings.primary_probe}


ANALYSIS = Analysis.of(__name__, scope="model_task", section="Embeddings", enabled=lambda s: s.embeddings)
