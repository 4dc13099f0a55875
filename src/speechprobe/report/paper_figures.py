"""Static figures for papers (PNG + SVG), the counterparts of the report's interactive ones.

*Headline heatmap* (:func:`plot_headline`): model x task best-layer Macro-F1 of the primary probe on the
chance-normalised scale (:mod:`.headline`), each cell annotated with the score and, for models, the gain
over the best baseline and its 95 % interval.

*Layer curves* (:func:`plot_task_panels`), one small panel per model: four models' confidence bands
on one axis blur into one mass, so each model gets its own panel on a shared y axis. In each, the
primary probe's curve with its 95 % band (clipped to [0, 1], where a Macro-F1 lives; a t interval does
not know that), the other probes as thin dotted lines labelled secondary, the best hand-crafted
baseline (same probe) as a horizontal line, chance dotted, and the primary probe's layers whose mean
falls below chance circled in red. A ``+random`` control is drawn in its trained twin's panel, dashed
with hollow markers. The x axis is relative depth whenever the models differ in depth, else the layer
index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.ticker import MaxNLocator

from ..analysis.contrast import is_random, model_styles, new_figure, trained_name
from ..analysis.plots import save_figure
from .headline import NORMALISED_RANGE

PANELS_PER_ROW = 4
# The chance-normalised scale (as in the interactive headline): red below chance, grey at chance, blue above.
NORMALISED_COLOURS = [(0.0, "#b2182b"), (0.2, "#f4f4f4"), (0.55, "#6baed6"), (1.0, "#08306b")]


def _draw_curve(ax, curve: pd.DataFrame, n: int, relative: bool, style, primary: bool, label: str) -> None:
    layers = curve["layer"].astype(int).to_numpy()
    x = layers / (n - 1) if relative else layers
    mean = curve["mean"].to_numpy(float)
    marker = "o" if primary else None
    face = style.face if primary else None
    ax.plot(
        x,
        mean,
        color=style.colour,
        ls=style.ls if primary else ":",
        lw=1.8 if primary else 1.0,
        marker=marker,
        ms=3.5,
        mfc=face,
        label=label,
    )
    if primary:
        ci = curve["ci95"].fillna(0).to_numpy(float)
        lo, hi = np.clip(mean - ci, 0.0, 1.0), np.clip(mean + ci, 0.0, 1.0)
        ax.fill_between(x, lo, hi, color=style.colour, alpha=0.10 if style.random else 0.18, lw=0)


def plot_task_panels(
    rows: pd.DataFrame,
    depth: Mapping[str, int],
    primary: str,
    out_path: Path,
    chance: float | None = None,
    title: str = "",
) -> tuple[Path, list[str], bool] | None:
    """Draw ``out_path`` (PNG and SVG) from one task's macro_f1 summary rows; return it with the
    ``"<model> layer <l>"`` points below chance (for the caption and findings) and whether the x axis is
    relative depth. None without a multi-layer model."""
    rows = rows[rows["layer"].notna() & (rows["probe"] != "kmeans")].dropna(subset=["mean"])
    rows = rows[~rows["probe"].astype(str).str.startswith("zeroshot:")]
    multi = sorted(m for m in rows["model"].unique() if int(depth.get(m, 1)) > 1)
    if not multi:
        return None
    panels = list(dict.fromkeys(trained_name(m) if trained_name(m) in multi else m for m in multi))
    relative = len({int(depth[m]) for m in multi}) > 1
    styles = model_styles(multi)
    cols = min(PANELS_PER_ROW, len(panels))
    n_rows = math.ceil(len(panels) / cols)
    fig = new_figure(2.2 + 2.9 * cols, 0.9 + 2.5 * n_rows)
    axes = np.atleast_1d(fig.subplots(n_rows, cols, sharey=True, squeeze=False)).ravel()
    base = rows[(rows["probe"] == primary) & rows["model"].map(lambda m: int(depth.get(m, 1)) == 1)]
    best_base = base.sort_values(["mean", "model"], ascending=[False, True]).head(1)
    below: list[str] = []
    for ax, panel in zip(axes, panels):
        for model in [m for m in multi if m == panel or (is_random(m) and trained_name(m) == panel)]:
            n = int(depth[model])
            for probe, curve in rows[rows["model"] == model].groupby("probe", sort=True):
                curve = curve.sort_values("layer")
                is_primary = probe == primary
                twin = " +random" if is_random(model) else ""
                label = f"{probe}{twin} (primary)" if is_primary else f"{probe}{twin} (secondary)"
                _draw_curve(ax, curve, n, relative, styles[model], is_primary, label)
                if is_primary and chance is not None and np.isfinite(chance):
                    below += _mark_below_chance(ax, curve, n, relative, chance, model)
        for r in best_base.itertuples(index=False):
            ax.axhline(r.mean, color="#555555", lw=1.2, ls="-.", label=f"best baseline: {r.model} ({r.probe})")
        if chance is not None and np.isfinite(chance):
            ax.axhline(chance, color="black", lw=1.0, ls=":", label="chance")
        _style_axis(ax, panel, relative)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    _figure_legend(fig, axes[: len(panels)])
    fig.supylabel("Macro-F1", fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(out_path)), below, relative


def _mark_below_chance(ax, curve: pd.DataFrame, n: int, relative: bool, chance: float, model: str) -> list[str]:
    """Circle in red the layers of a primary-probe curve whose mean is below chance; name them."""
    low = curve[curve["mean"] < chance]
    lx = low["layer"].astype(int).to_numpy()
    ax.plot(
        lx / (n - 1) if relative else lx,
        low["mean"],
        ls="none",
        marker="o",
        ms=9,
        mfc="none",
        mec="#c62828",
        label="below chance",
        mew=1.4,
    )
    return [f"{model} layer {int(layer)}" for layer in low["layer"]]


def _style_axis(ax, panel: str, relative: bool) -> None:
    """Title, labels, limits and grid of one panel."""
    ax.set_title(panel, fontsize="medium")
    ax.set_xlabel("relative depth" if relative else "layer", fontsize="small")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if relative:
        ax.set_xlim(-0.03, 1.03)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _figure_legend(fig, axes) -> None:
    """One legend for the figure, below the panels: each label once, in the order first drawn."""
    legend: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(
        legend.values(),
        legend.keys(),
        loc="outside lower center",
        ncol=min(5, len(legend)),
        fontsize="small",
        frameon=False,
    )


def plot_headline(headline: pd.DataFrame, out_path: Path) -> Path | None:
    """The headline heatmap as PNG and SVG; None without rows."""
    if headline.empty:
        return None
    tasks = sorted(headline["task"].unique())
    rows = list(dict.fromkeys(headline["model"]))
    kind = dict(zip(headline["model"], headline["kind"]))
    grid = np.full((len(rows), len(tasks)), np.nan)
    for r in headline.itertuples(index=False):
        grid[rows.index(r.model), tasks.index(r.task)] = r.normalised
    fig = new_figure(2.4 + 1.25 * len(tasks), 1.3 + 0.55 * len(rows))
    ax = fig.subplots()
    cmap = LinearSegmentedColormap.from_list("normalised", NORMALISED_COLOURS).with_extremes(bad="#dddddd")
    lo, hi = NORMALISED_RANGE
    image = ax.imshow(np.clip(grid, lo, hi), cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
    for r in headline.itertuples(index=False):
        text = f"{r.score:.2f}"
        if r.kind == "model" and np.isfinite(r.gain):
            text += f"\n{r.gain:+.2f}" + (f"±{r.gain_ci95:.2f}" if np.isfinite(r.gain_ci95) else "")
        dark = np.isfinite(r.normalised) and r.normalised > 0.55
        ax.text(
            tasks.index(r.task),
            rows.index(r.model),
            text,
            ha="center",
            va="center",
            fontsize=7.5,
            color="white" if dark else "black",
        )
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize="small")
    names = [f"{m} (baseline)" if kind[m] == "baseline" else m for m in rows]
    ax.set_yticks(range(len(rows)), names, fontsize="small")
    bar = fig.colorbar(image, ax=ax, ticks=[lo, 0, 0.5, 1])
    bar.ax.set_yticklabels(["below", "chance", "0.5", "perfect"])
    bar.set_label("(Macro-F1 − chance) / (1 − chance)")
    return save_figure(fig, Path(out_path))


__all__ = ["plot_headline", "plot_task_panels"]
