"""Figures of the layer-similarity analysis (:mod:`speechprobe.analysis.similarity`): layer × layer heatmaps
per model, model × model heatmaps on relative depth, and each layer's similarity to the hand-crafted
baselines. Random-init models sit beside their trained twin (:mod:`.base`); matplotlib is imported when drawing."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from ..rundir import slug
from .base import contrast_note, is_random, model_styles, new_figure, save_figure, trained_name

MEASURE_LABELS = {"cka": "debiased linear CKA", "mutual_knn": "mutual k-NN overlap"}
BASELINE_MARKERS = ["o", "s", "^", "D", "v", "P"]
MAX_PAIRS = 8


def _cmap():
    from matplotlib import colormaps

    return colormaps["magma"].with_extremes(bad="#dddddd")


def _edges(n: int) -> np.ndarray:
    """Cell edges on relative depth for ``n`` layers centred at ``l / (n - 1)``."""
    centres = np.arange(n) / (n - 1)
    half = 0.5 / (n - 1)
    return np.concatenate([[centres[0] - half], centres + half])


def _panel_rows(models: list[str]) -> list[list[str]]:
    """One figure per trained model holding [trained, its random twin]; a lone random model alone."""
    out = []
    for m in models:
        if is_random(m) and trained_name(m) in models:
            continue
        twin = m + "+random"
        out.append([m, twin] if twin in models else [m])
    return out


def plot_within(sim, out_dir: Path) -> list[tuple[Path, str]]:
    """``similarity_layers_<model>.png``: layer × layer matrices of both measures (columns); a
    random-init twin as a second row. Returns (png, caption) pairs."""
    out = []
    for group in _panel_rows(sim.models(multi_layer=True)):
        fig = new_figure(9.0, 0.6 + 3.8 * len(group))
        axes = fig.subplots(len(group), 2, squeeze=False)
        for row, model in enumerate(group):
            idx = sim.index(model)
            for col, measure in enumerate(("cka", "mutual_knn")):
                ax = axes[row, col]
                image = ax.imshow(sim.values[measure][np.ix_(idx, idx)], cmap=_cmap(), vmin=0, vmax=1, origin="lower")
                ax.set_title(f"{model}: {MEASURE_LABELS[measure]}", fontsize="medium")
                ax.set_xlabel("layer")
                ax.set_ylabel("layer")
                fig.colorbar(image, ax=ax, fraction=0.046)
        png = save_figure(fig, Path(out_dir) / f"similarity_layers_{slug(group[0])}.png")
        caption = (
            f"Similarity between every pair of layers of {group[0]} on {sim.n_clips} clips: debiased linear CKA "
            f"(left) and mutual {sim.k}-nearest-neighbour overlap (right); layer 0 is the input embedding. "
            "Bright blocks are runs of layers that represent the clips alike."
        )
        if len(group) > 1:
            caption += f" Bottom row: {group[1]}, the same architecture with random weights."
        out.append((png, caption))
    return out


def _pairs(models: list[str]) -> list[tuple[str, str]]:
    """Model pairs worth a panel: trained–trained, and each trained model against its random twin."""
    pairs = [(a, b) for a, b in combinations(models, 2) if not (is_random(a) and is_random(b))]
    keep = [(a, b) for a, b in pairs if is_random(a) == is_random(b) or trained_name(a) == trained_name(b)]
    return keep or pairs


def _depth_heatmap(ax, sim, a: str, b: str, measure: str):
    ia, ib = sim.index(a), sim.index(b)
    mesh = ax.pcolormesh(
        _edges(len(ib)), _edges(len(ia)), sim.values[measure][np.ix_(ia, ib)], cmap=_cmap(), vmin=0, vmax=1
    )
    ax.plot([0, 1], [0, 1], color="white", lw=0.8, ls=":")
    ax.set_xlabel(f"{b}: relative depth")
    ax.set_ylabel(f"{a}: relative depth")
    ax.set_title(MEASURE_LABELS[measure], fontsize="medium")
    return mesh


def plot_between(sim, out_path: Path) -> tuple[Path, str] | None:
    """``similarity_models.png``: for each pair of multi-layer models, both measures between all
    their layers on relative depth (0 = input embedding, 1 = last layer). None with fewer than 2 models."""
    pairs = _pairs(sim.models(multi_layer=True))
    if not pairs:
        return None
    shown = pairs[:MAX_PAIRS]
    fig = new_figure(9.0, 0.6 + 3.8 * len(shown))
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for row, (a, b) in enumerate(shown):
        for col, measure in enumerate(("cka", "mutual_knn")):
            mesh = _depth_heatmap(axes[row, col], sim, a, b, measure)
            fig.colorbar(mesh, ax=axes[row, col], fraction=0.046)
    caption = (
        "Layer similarity between models, on relative depth (0 = input embedding, 1 = last layer), so models "
        f"with different numbers of layers compare directly; {sim.n_clips} clips; left: debiased linear CKA, "
        f"right: mutual {sim.k}-NN overlap; dotted: equal relative depth."
    )
    if len(pairs) > len(shown):
        caption += f" The first {len(shown)} of {len(pairs)} pairs are drawn; similarity.csv holds all."
    if any(is_random(m) for p in shown for m in p):
        caption += " Rows pairing a model with its +random twin show what the architecture alone shares."
    return save_figure(fig, Path(out_path)), caption


def plot_baselines(sim, out_path: Path) -> tuple[Path, str] | None:
    """``similarity_baselines.png``: each layer's similarity to each hand-crafted baseline, on
    relative depth; None when the run has no baseline or no multi-layer model."""
    models, bases = sim.models(multi_layer=True), sim.models(multi_layer=False)
    if not models or not bases:
        return None
    styles = model_styles(models)
    fig = new_figure(11.0, 4.2)
    axes = fig.subplots(1, 2)
    for ax, measure in zip(axes, ("cka", "mutual_knn")):
        for model in models:
            idx, st = sim.index(model), styles[model]
            for j, base in enumerate(bases):
                y = sim.values[measure][idx, sim.index(base)[0]]
                ax.plot(
                    sim.depths[idx],
                    y,
                    color=st.colour,
                    ls=st.ls,
                    marker=BASELINE_MARKERS[j % len(BASELINE_MARKERS)],
                    mfc=st.face,
                    alpha=st.alpha,
                    ms=4.5,
                    label=f"{model} vs {base}",
                )
        ax.set_xlabel("relative depth (0 = input embedding, 1 = last layer)")
        ax.set_ylabel(MEASURE_LABELS[measure])
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    caption = (
        f"Similarity of each layer to the hand-crafted baselines ({', '.join(bases)}; marker per baseline) on "
        f"{sim.n_clips} clips: debiased linear CKA (left) and mutual {sim.k}-NN overlap (right). High values "
        "mean the layer still looks like the hand-crafted features."
    )
    note = contrast_note(models)
    return save_figure(fig, Path(out_path)), caption + (" " + note if note else "")
