"""The headline heatmap: model × task best-layer Macro-F1 of the primary probe on the chance-normalised
scale (:mod:`speechprobe.report.headline` builds the table), one spec (:func:`headline_spec`) and two
renderers. Each cell shows the score and, for models, the gain over the best baseline ± its 95 % interval;
the interactive cells add the layer, depth, n, the out-of-fold score and the tests on hover.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .base import fmt, new_figure, num, plotly_layout, save_figure

NORMALISED_RANGE = (-0.25, 1.0)  # the colour scale: a quarter below chance up to a perfect score
# red below chance, grey at chance, blue up to a perfect score
NORMALISED_COLOURS = ((0.0, "#b2182b"), (0.2, "#f4f4f4"), (0.55, "#6baed6"), (1.0, "#08306b"))
TICKS = ((-0.25, "below"), (0, "chance"), (0.5, "0.5"), (1, "perfect"))


@dataclass
class Headline:
    """The heatmap as a grid: rows (models, baselines last as the table orders them) × task columns."""

    tasks: list[str]
    labels: list[str]  # row labels: the model, "<name> (baseline)" for a baseline
    cells: pd.DataFrame  # row, col, value (normalised, clipped), dark, lines (cell text), hover


def headline_spec(headline: pd.DataFrame) -> Headline | None:
    """The grid of a headline table (:func:`speechprobe.report.headline.headline_table`); None when empty."""
    if headline.empty:
        return None
    tasks = sorted(headline["task"].unique())
    models = list(dict.fromkeys(headline["model"]))
    kind = dict(zip(headline["model"], headline["kind"]))
    cells = []
    for r in headline.itertuples(index=False):
        value = num(r.normalised)
        lines = [fmt(r.score, 2)]
        if r.kind == "model" and num(r.gain) is not None:
            lines.append(
                fmt(r.gain, 2, signed=True) + (f"±{fmt(r.gain_ci95, 2)}" if num(r.gain_ci95) is not None else "")
            )
        clipped = None if value is None else float(np.clip(value, *NORMALISED_RANGE))
        dark = value is not None and value > 0.55
        cells.append((models.index(r.model), tasks.index(r.task), clipped, dark, lines, _hover(r)))
    labels = [f"{m} (baseline)" if kind[m] == "baseline" else m for m in models]
    return Headline(tasks, labels, pd.DataFrame(cells, columns=["row", "col", "value", "dark", "lines", "hover"]))


def _hover(r) -> str:
    """The hover text of one headline row."""
    ci = f" ± {fmt(r.ci95)}" if num(r.ci95) is not None else ""
    lines = [
        f"<b>{html.escape(str(r.model))} · {html.escape(str(r.task))}</b>",
        f"best layer {r.layer} of 0–{r.num_layers - 1} (relative depth {fmt(r.relative_depth, 2)}), probe {r.probe}",
        f"Macro-F1 {fmt(r.score)}{ci} [{fmt(r.score_lo)}, {fmt(r.score_hi)}], n = {r.n_folds} folds",
        f"chance {fmt(r.chance)}; normalised {fmt(r.normalised)} [{fmt(r.normalised_lo)}, {fmt(r.normalised_hi)}]",
    ]
    if r.kind == "model" and isinstance(r.baseline, str):
        lines.append(
            f"best baseline {html.escape(r.baseline)} {fmt(r.baseline_score)}; gain {fmt(r.gain, signed=True)}"
            + (f" ± {fmt(r.gain_ci95)}" if num(r.gain_ci95) is not None else "")
        )
    if num(r.oof) is not None and num(r.oof_lo) is not None:
        lines.append(
            f"spread of the out-of-fold score at this layer {fmt(r.oof)} [{fmt(r.oof_lo)}, {fmt(r.oof_hi)}] "
            "(bootstrap over the task's unit, fitted probes)"
        )
    elif num(r.oof) is not None:
        lines.append(f"out-of-fold Macro-F1 {fmt(r.oof)} (no bootstrap interval: too few units per class)")
    if num(r.p_best) is not None:
        spread = r.best_layer_distribution or f"{float(r.p_best):.0%}"
        lines.append(f"best layer over resamples: {html.escape(str(spread))}")
    if num(r.p_value) is not None:
        lines.append(f"selection-aware permutation test: p = {float(r.p_value):.3g}")
    return "<br>".join(lines)


def draw(spec: Headline, out_path: Path) -> Path:
    """The static heatmap (PNG and SVG)."""
    from matplotlib.colors import LinearSegmentedColormap

    tasks, labels = spec.tasks, spec.labels
    grid = np.full((len(labels), len(tasks)), np.nan)
    for c in spec.cells.itertuples(index=False):
        grid[c.row, c.col] = np.nan if c.value is None else c.value
    fig = new_figure(2.4 + 1.25 * len(tasks), 1.3 + 0.55 * len(labels))
    ax = fig.subplots()
    cmap = LinearSegmentedColormap.from_list("normalised", NORMALISED_COLOURS).with_extremes(bad="#dddddd")
    lo, hi = NORMALISED_RANGE
    image = ax.imshow(grid, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
    for c in spec.cells.itertuples(index=False):
        colour = "white" if c.dark else "black"
        ax.text(c.col, c.row, "\n".join(c.lines), ha="center", va="center", fontsize=7.5, color=colour)
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize="small")
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    bar = fig.colorbar(image, ax=ax, ticks=[t for t, _ in TICKS])
    bar.ax.set_yticklabels([name for _, name in TICKS])
    bar.set_label("(Macro-F1 − chance) / (1 − chance)")
    return save_figure(fig, Path(out_path))


def plotly(spec: Headline) -> dict:
    """The interactive heatmap: each cell's text, and its hover with the layer, intervals and tests."""
    tasks, labels = spec.tasks, spec.labels
    z = [[None] * len(tasks) for _ in labels]
    text = [[""] * len(tasks) for _ in labels]
    hover = [["no result"] * len(tasks) for _ in labels]
    for c in spec.cells.itertuples(index=False):
        z[c.row][c.col], text[c.row][c.col], hover[c.row][c.col] = c.value, "<br>".join(c.lines), c.hover
    trace = {
        "type": "heatmap",
        "x": tasks,
        "y": labels,
        "z": z,
        "zmin": NORMALISED_RANGE[0],
        "zmax": NORMALISED_RANGE[1],
        "colorscale": [list(stop) for stop in NORMALISED_COLOURS],
        "text": text,
        "texttemplate": "%{text}",
        "hovertext": hover,
        "hovertemplate": "%{hovertext}<extra></extra>",
        "xgap": 2,
        "ygap": 2,
        "colorbar": {
            "title": {"text": "(F1 − chance)<br>/ (1 − chance)", "side": "right"},
            "tickvals": [t for t, _ in TICKS],
            "ticktext": [name for _, name in TICKS],
        },
    }
    layout = plotly_layout(
        140 + 46 * len(labels),
        xaxis={"side": "top", "tickangle": -30, "automargin": True},  # long task names do not overlap
        yaxis={"autorange": "reversed", "automargin": True},
        margin={"l": 150, "r": 20, "t": _top_margin(tasks), "b": 10},
    )
    return {"data": [trace], "layout": layout}


def _top_margin(columns: list[str], tickangle: float = 30.0, char_px: float = 7.0) -> int:
    """Room above a heat map for its column labels rotated by ``tickangle`` degrees and, above them, the
    Plotly toolbar (about 30 px), so that the toolbar never covers a label."""
    longest = max((len(str(c)) for c in columns), default=0)
    return int(30 + 16 + longest * char_px * np.sin(np.radians(tickangle)))
