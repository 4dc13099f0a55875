"""2-D embeddings (t-SNE or UMAP) of chosen layers, points coloured by label (PNG and SVG); matplotlib is
imported when drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from .base import new_figure, save_figure


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
    ``n_jobs`` at a time, in processes (each embedding is seeded and single-threaded: the same points).
    ``umap`` needs umap-learn (ImportError without it)."""
    from matplotlib import colormaps

    if method == "umap" and not umap_available():
        raise ImportError("UMAP plots need umap-learn: pip install 'speechprobe[umap]'")
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
    fig = new_figure(3.6 * len(layers) + 1.6, 3.8, layout=None)
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
