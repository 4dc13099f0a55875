"""Figures, each written atomically as PNG and SVG: heatmaps (model × task best score; layer × task per
model), t-SNE / UMAP of chosen layers, zero-shot vs probe scatter. (Layer curves, the headline and the
depth fingerprints: :mod:`speechprobe.figures`.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from matplotlib import colormaps
from matplotlib.axes import Axes

from ..figures.base import METRIC_LABELS, new_figure, save_figure
from ..rundir import slug
from .summary import best_layers, layer_rows, num_layers

PROBE_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _colours(models: list[str]) -> dict[str, tuple]:
    palette = colormaps["tab10" if len(models) <= 10 else "tab20"].colors
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


def _new_figure(width: float, height: float):
    return new_figure(width, height, layout=None)


def _annotated_heatmap(
    ax: Axes,
    matrix: np.ndarray,
    rows: list[str],
    cols: list[str],
    vmin: float,
    vmax: float,
    cmap_name: str = "viridis",
):
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
    fig = _new_figure(2.2 + (0.9 + 0.42 * widest) * n_cols, 0.8 + (1.1 + 0.26 * len(rows)) * n_rows)
    fig.set_layout_engine("constrained")  # titles clear of the tick labels of the panel above
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for i, row in enumerate(panels):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.set_visible(False)
                continue
            title, matrix, cols = row[j]
            image = _annotated_heatmap(ax, matrix, rows, cols, *limits, cmap_name=cmap_name)
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
    summary: pd.DataFrame,
    out_path: Path,
    metric: str = "macro_f1",
    depths: dict[str, int] | None = None,
    probe: str | None = None,
) -> Path | None:
    """Heatmap of model × task: each cell the best (layer, probe) mean ``metric``, or with ``probe`` (the
    primary probe) that probe's best layer. None when empty."""
    best = best_layers(summary, metric, depths)
    if probe is not None:
        best = best[best["probe"] == probe]
    if best.empty:
        return None
    table = best.groupby(["model", "task"])["mean"].max().unstack("task")
    depth = num_layers(summary, depths)
    order = sorted(table.index, key=lambda m: (int(depth.get(m, 1)) == 1, m))
    table = table.loc[order]
    matrix = table.to_numpy(float)
    fig = _new_figure(1.6 + 0.9 * table.shape[1], 1.4 + 0.45 * table.shape[0])
    ax = fig.subplots()
    image = _annotated_heatmap(ax, matrix, list(table.index), list(table.columns), *_limits(matrix))
    fig.colorbar(image, ax=ax, label=f"best {METRIC_LABELS.get(metric, metric)}")
    which = "best layer and probe" if probe is None else f"best layer, {probe} probe"
    ax.set_title(f"Best {METRIC_LABELS.get(metric, metric)} per model and task ({which})")
    return save_figure(fig, Path(out_path))


def plot_layer_heatmaps(
    summary: pd.DataFrame, out_dir: Path, metric: str = "macro_f1", depths: dict[str, int] | None = None
) -> list[Path]:
    """``heatmap_layers_<model>.png`` per multi-layer model: layer × task, one panel per probe."""
    rows = layer_rows(summary, metric).dropna(subset=["mean"])
    depth = num_layers(summary, depths)
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
        fig = _new_figure(1.8 + (1.0 + 0.8 * len(tasks)) * len(probes), 1.6 + 0.28 * n)
        axes = np.atleast_1d(fig.subplots(1, len(probes), squeeze=False)[0])
        for ax, probe, matrix in zip(axes, probes, matrices):
            image = _annotated_heatmap(ax, matrix, [str(i) for i in range(n)], tasks, vmin, vmax)
            ax.set_title(f"{model} ({probe})", fontsize="medium")
            ax.set_ylabel("layer")
        fig.colorbar(image, ax=list(axes), label=METRIC_LABELS.get(metric, metric))
        paths.append(save_figure(fig, Path(out_dir) / f"heatmap_layers_{slug(str(model))}.png"))
    return paths


def _subsample(labels: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Indices of at most ``max_points`` items, stratified by label, seeded, in original order."""
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        k = max(1, round(max_points * len(idx) / n))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def umap_available() -> bool:
    """Whether ``umap-learn`` can be imported."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def _embed(X: np.ndarray, method: str, seed: int) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    # Multi-threaded BLAS/OpenMP slows t-SNE down many times over on small inputs (oversubscription).
    with threadpool_limits(1):
        return _embed_single_thread(X, method, seed)


def _embed_single_thread(X: np.ndarray, method: str, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
    X = np.nan_to_num(X)
    if X.shape[1] > 50 and X.shape[0] > 50:
        X = PCA(50, random_state=seed).fit_transform(X)
    n = X.shape[0]
    if method == "umap":
        import umap  # optional dependency (the ``umap`` extra)

        reducer = umap.UMAP(n_neighbors=max(2, min(15, n - 1)), random_state=seed)
        return reducer.fit_transform(X)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)


def plot_embedding(
    features_3d: np.ndarray,
    labels,
    layers: dict[str, int],
    out_path: Path,
    seed: int = 0,
    method: str = "tsne",
    max_points: int = 1500,
    title: str | None = None,
    n_jobs: int = 1,
) -> Path:
    """2-D embedding (``tsne`` or ``umap``) of each chosen layer, one panel per ``layers`` entry
    (e.g. ``{"first": 0, "best": 5, "last": 12}``), points coloured by label; the layers are embedded
    ``n_jobs`` at a time, in processes (each embedding is seeded and single-threaded: the same points)."""
    X = np.asarray(features_3d)
    y = np.asarray(labels).astype(str)
    if X.ndim != 3 or len(y) != X.shape[0]:
        raise ValueError(f"need features (items, layers, dims) and one label per item, got {X.shape} and {len(y)}")
    if len(y) < 4:
        raise ValueError(f"need at least 4 items for a {method} plot, got {len(y)}")
    keep = _subsample(y, max_points, seed)
    y = y[keep]
    classes = sorted(np.unique(y))
    palette = colormaps["tab10" if len(classes) <= 10 else "tab20"].colors
    fig = _new_figure(3.6 * len(layers) + 1.6, 3.8)
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    embedded = Parallel(n_jobs=min(n_jobs, len(layers)))(
        delayed(_embed)(X[keep, layer], method, seed) for layer in layers.values()
    )
    for ax, (name, layer), points in zip(axes, layers.items(), embedded):
        for k, cls in enumerate(classes):
            sel = y == cls
            ax.scatter(
                points[sel, 0], points[sel, 1], s=9, color=palette[k % len(palette)], label=cls, alpha=0.8, linewidths=0
            )
        ax.set_title(f"{name}: layer {layer}", fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, markerscale=1.5)
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(out_path))


def plot_tsne(
    features_3d: np.ndarray,
    labels,
    layers: dict[str, int],
    out_path: Path,
    seed: int = 0,
    max_points: int = 1500,
    title: str | None = None,
    n_jobs: int = 1,
) -> Path:
    """t-SNE of each chosen layer (e.g. first, best, last), coloured by label; PNG + SVG."""
    return plot_embedding(features_3d, labels, layers, out_path, seed, "tsne", max_points, title, n_jobs)


def plot_umap(
    features_3d: np.ndarray,
    labels,
    layers: dict[str, int],
    out_path: Path,
    seed: int = 0,
    max_points: int = 1500,
    title: str | None = None,
    n_jobs: int = 1,
) -> Path:
    """UMAP of each chosen layer; needs ``umap-learn`` (raises ImportError without it)."""
    if not umap_available():
        raise ImportError("UMAP plots need umap-learn: pip install 'speechprobe[umap]'")
    return plot_embedding(features_3d, labels, layers, out_path, seed, "umap", max_points, title, n_jobs)


def zeroshot_points(summary: pd.DataFrame, metric: str = "macro_f1", probe: str | None = None) -> pd.DataFrame:
    """One row per zero-shot (model, task, prompt): its score and the best probe score it is compared with
    (the same model's best layer and probe; else the best probe of any model, ``reference = "any model"``);
    with ``probe`` (the primary probe), that probe's best layer only."""
    columns = ["model", "task", "prompt", "zeroshot", "probe_score", "reference"]
    rows = summary[summary["metric"] == metric].dropna(subset=["mean"])
    zs = rows[rows["probe"].str.startswith("zeroshot:")]
    if zs.empty:
        return pd.DataFrame(columns=columns)
    probes = rows[rows["layer"].notna() & ~rows["probe"].str.startswith("zeroshot:")]
    if probe is not None:
        probes = probes[probes["probe"] == probe]
    own = probes.groupby(["model", "task"])["mean"].max()
    anyone = probes.groupby("task")["mean"].max()
    out = []
    for r in zs.itertuples(index=False):
        if (r.model, r.task) in own.index:
            ref, score = "same model", float(own[(r.model, r.task)])
        elif r.task in anyone.index:
            ref, score = "any model", float(anyone[r.task])
        else:
            ref, score = "none", float("nan")
        out.append((r.model, r.task, r.probe.removeprefix("zeroshot:"), float(r.mean), score, ref))
    return pd.DataFrame(out, columns=columns)


def plot_zeroshot_scatter(
    summary: pd.DataFrame, out_path: Path, metric: str = "macro_f1", probe: str | None = None
) -> Path | None:
    """Zero-shot score (y) against the best probe score (x) per (model, task, prompt); None without zero-shot rows."""
    points = zeroshot_points(summary, metric, probe).dropna(subset=["probe_score"])
    if points.empty:
        return None
    fig = _new_figure(6.8, 4.8)
    ax = fig.subplots()
    tasks = sorted(points["task"].unique())
    models = sorted(points["model"].unique())
    colours = _colours(tasks)
    for k, model in enumerate(models):
        for task in tasks:
            sel = points[(points["model"] == model) & (points["task"] == task)]
            if sel.empty:
                continue
            hollow = (sel["reference"] == "any model").to_numpy()
            for mask, face in ((~hollow, colours[task]), (hollow, "none")):
                if mask.any():
                    ax.scatter(
                        sel["probe_score"][mask],
                        sel["zeroshot"][mask],
                        marker=PROBE_MARKERS[k % len(PROBE_MARKERS)],
                        s=40,
                        facecolors=face,
                        edgecolors=colours[task],
                        label=f"{model} · {task}",
                    )
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="zero-shot = probe")
    lo = float(min(points["probe_score"].min(), points["zeroshot"].min(), 0.0))
    hi = float(max(points["probe_score"].max(), points["zeroshot"].max(), 1.0))
    ax.set_xlim(lo - 0.02, hi + 0.02)
    ax.set_ylim(lo - 0.02, hi + 0.02)
    label = METRIC_LABELS.get(metric, metric)
    ax.set_xlabel(f"best probe {label} (hollow: best of any model)")
    ax.set_ylabel(f"zero-shot {label}")
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(
        unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False
    )
    return save_figure(fig, Path(out_path))
