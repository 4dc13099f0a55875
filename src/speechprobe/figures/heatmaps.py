"""Annotated heatmaps (PNG and SVG): model × task best scores, layer × task per model (the report's detail
figures) and grids of panels sharing one colour scale (the cue analyses). matplotlib is imported when drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..rundir import slug
from .base import METRIC_LABELS, new_figure, save_figure


def annotated_heatmap(
    ax,
    matrix: np.ndarray,
    rows: list[str],
    cols: list[str],
    vmin: float,
    vmax: float,
    cmap_name: str = "viridis",
):
    """Draw ``matrix`` on ``ax`` (rows × cols, NaN grey) with each value written in its cell (up to 400 cells)."""
    from matplotlib import colormaps

    cmap = colormaps[cmap_name]
    cmap = cmap.with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=35, ha="right", fontsize="small")
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize="small")
    diverging = cmap_name != "viridis"  # a diverging map is dark at both ends, light in the middle
    if matrix.size <= 400:
        for (i, j), v in np.ndenumerate(matrix):
            text = "–" if not np.isfinite(v) else f"{v:.2f}"
            position = (v - vmin) / max(vmax - vmin, 1e-9) if np.isfinite(v) else 0.0
            bright = 0.2 < position < 0.8 if diverging else position > 0.6
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if bright else "white")
    return image


def plot_panel_heatmaps(
    panels: list[list[tuple[str, np.ndarray, list[str]]]],
    rows: list[str],
    out_path: Path,
    limits: tuple[float, float],
    colorbar_label: str,
    xlabel: str = "layer",
    cmap_name: str = "viridis",
) -> Path:
    """A grid of annotated heatmaps sharing row labels and one colour scale; ``panels[i][j]`` is
    ``(title, matrix (len(rows), n_cols), column labels)``. Used by the cue analyses (one row of
    panels per model, the ``+random`` twin below)."""
    n_rows, n_cols = len(panels), max(len(p) for p in panels)
    widest = max(m.shape[1] for p in panels for _, m, _ in p)
    # constrained layout: titles clear of the tick labels of the panel above
    fig = new_figure(2.2 + (0.9 + 0.42 * widest) * n_cols, 0.8 + (1.1 + 0.26 * len(rows)) * n_rows)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for i, row in enumerate(panels):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.set_visible(False)
                continue
            title, matrix, cols = row[j]
            image = annotated_heatmap(ax, matrix, rows, cols, *limits, cmap_name=cmap_name)
            ax.set_title(title, fontsize="small")
            ax.set_xlabel(xlabel, fontsize="small")
            if j:
                ax.set_yticklabels([])
    fig.colorbar(image, ax=axes.ravel().tolist(), label=colorbar_label)
    return save_figure(fig, Path(out_path))


def _limits(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.05, hi + 0.05)


def plot_best_heatmap(
    best: pd.DataFrame, depth: pd.Series, out_path: Path, metric: str = "macro_f1", probe: str | None = None
) -> Path | None:
    """Heatmap of model × task from the best layers (:func:`speechprobe.analysis.summary.best_layers`; ``depth``:
    model → layers, single-layer models last): each cell the best (layer, probe) mean ``metric``, or with
    ``probe`` (the primary probe) that probe's best layer. None when empty."""
    if probe is not None:
        best = best[best["probe"] == probe]
    if best.empty:
        return None
    table = best.groupby(["model", "task"])["mean"].max().unstack("task")
    order = sorted(table.index, key=lambda m: (int(depth.get(m, 1)) == 1, m))
    table = table.loc[order]
    matrix = table.to_numpy(float)
    fig = new_figure(1.6 + 0.9 * table.shape[1], 1.4 + 0.45 * table.shape[0], layout=None)
    ax = fig.subplots()
    image = annotated_heatmap(ax, matrix, list(table.index), list(table.columns), *_limits(matrix))
    fig.colorbar(image, ax=ax, label=f"best {METRIC_LABELS.get(metric, metric)}")
    which = "best layer and probe" if probe is None else f"best layer, {probe} probe"
    ax.set_title(f"Best {METRIC_LABELS.get(metric, metric)} per model and task ({which})")
    return save_figure(fig, Path(out_path))


def plot_layer_heatmaps(rows: pd.DataFrame, depth: pd.Series, out_dir: Path, metric: str = "macro_f1") -> list[Path]:
    """``heatmap_layers_<model>.png`` per multi-layer model (``depth``: model → layers) from the summary rows of
    ``metric`` that have a layer: layer × task, one panel per probe."""
    rows = rows.dropna(subset=["mean"])
    paths = []
    for model, model_rows in rows.groupby("model", sort=True):
        n = int(depth.get(model, 1))
        if n <= 1:
            continue
        probes = sorted(model_rows["probe"].unique())
        tasks = sorted(model_rows["task"].unique())
        matrices = []
        for probe in probes:
            grid = model_rows[model_rows["probe"] == probe].pivot_table(index="layer", columns="task", values="mean")
            matrices.append(grid.reindex(index=range(n), columns=tasks).to_numpy(float))
        vmin, vmax = _limits(np.concatenate([m.ravel() for m in matrices]))
        fig = new_figure(1.8 + (1.0 + 0.8 * len(tasks)) * len(probes), 1.6 + 0.28 * n, layout=None)
        axes = np.atleast_1d(fig.subplots(1, len(probes), squeeze=False)[0])
        for ax, probe, matrix in zip(axes, probes, matrices):
            image = annotated_heatmap(ax, matrix, [str(i) for i in range(n)], tasks, vmin, vmax)
            ax.set_title(f"{model} ({probe})", fontsize="medium")
            ax.set_ylabel("layer")
        fig.colorbar(image, ax=list(axes), label=METRIC_LABELS.get(metric, metric))
        paths.append(save_figure(fig, Path(out_dir) / f"heatmap_layers_{slug(str(model))}.png"))
    return paths
