"""Layer curves of one task: Macro-F1 per layer, one spec (:func:`curve_spec`) and two renderers.

The spec holds, per multi-layer model and probe, the mean over folds with its 95 % band (clipped to
[0, 1], where a Macro-F1 lives; a t interval does not know that), the single-layer baselines at the
primary probe (best first), chance, and the primary probe's layers whose mean falls below chance. The x
axis is relative depth whenever the models differ in depth, else the layer index.

- :func:`draw` (static, ``figures/layers_<task>.png``): one small panel per model on a shared y axis (four
  models' bands on one axis blur into one mass); the primary probe with its band, the other probes thin and
  dotted, the best baseline dash-dotted, chance dotted, below-chance layers circled in red; a ``+random``
  control in its trained twin's panel, dashed with hollow markers. Without a multi-layer model: one panel
  of the baselines.
- :func:`plotly` (the report): every model on one axis, hover with the exact values; secondary probes and
  the other baselines hidden until clicked in the legend.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..rundir import slug
from .base import (
    PALETTE,
    RELATIVE_DEPTH,
    colours,
    fmt,
    is_random,
    model_styles,
    new_figure,
    plotly_layout,
    rgba,
    save_figure,
    trained_name,
)

PANELS_PER_ROW = 4


@dataclass
class Curves:
    """One task's layer curves as tidy frames (see :func:`curve_spec`)."""

    curves: pd.DataFrame  # model, probe, layer, n_layers, x, mean, ci, lo, hi, n, primary, below
    baselines: pd.DataFrame  # model, probe, mean, ci95: single-layer models at the primary probe, best first
    models: list[str]  # every model, in colour order; the multi-layer ones have curves
    primary: str
    chance: float | None
    relative: bool

    @property
    def multi(self) -> list[str]:
        return list(dict.fromkeys(self.curves["model"]))

    @property
    def below(self) -> list[str]:
        """``"<model> layer <l>"`` of each primary-probe layer whose mean is below chance."""
        low = self.curves[self.curves["below"]]
        return [f"{m} layer {int(layer)}" for m, layer in zip(low["model"], low["layer"])]


def curve_spec(
    rows: pd.DataFrame,
    depth: Mapping[str, int],
    primary: str,
    chance: float | None = None,
    order: Sequence[str] | None = None,
) -> Curves | None:
    """The layer curves of one task from its summary rows of metric macro_f1 (zero-shot and k-means rows
    ignored); ``depth``: model → number of layers; ``order``: the models' colour order. None without rows."""
    rows = rows[rows["layer"].notna() & ~rows["probe"].astype(str).str.startswith("zeroshot:")]
    rows = rows[rows["probe"] != "kmeans"].dropna(subset=["mean"])
    if rows.empty:
        return None
    models = list(dict.fromkeys([*(order or []), *sorted(rows["model"].unique())]))
    multi = [m for m in models if int(depth.get(m, 1)) > 1 and m in set(rows["model"])]
    relative = len({int(depth[m]) for m in multi}) > 1
    chance = float(chance) if chance is not None and np.isfinite(chance) else None
    parts = []
    for model in multi:
        for probe, curve in rows[rows["model"] == model].groupby("probe", sort=True):
            curve = curve.sort_values("layer")
            n, layer = int(depth[model]), curve["layer"].astype(int).to_numpy()
            mean, ci = curve["mean"].to_numpy(float), curve["ci95"].fillna(0).to_numpy(float)
            is_primary = probe == primary
            below = (mean < chance) & is_primary if chance is not None else np.zeros(len(mean), bool)
            x = layer / (n - 1) if relative else layer
            lo, hi = np.clip(mean - ci, 0, 1), np.clip(mean + ci, 0, 1)
            cols = dict(model=model, probe=probe, layer=layer, n_layers=n, x=x, mean=mean, ci=ci, lo=lo, hi=hi)
            parts.append(pd.DataFrame({**cols, "n": curve["n"].to_numpy(int), "primary": is_primary, "below": below}))
    base = rows[~rows["model"].isin(multi) & (rows["probe"] == primary)]
    base = base.sort_values(["mean", "model"], ascending=[False, True]).drop_duplicates("model")
    columns = ["model", "probe", "layer", "n_layers", "x", "mean", "ci", "lo", "hi", "n", "primary", "below"]
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return Curves(curves, base[["model", "probe", "mean", "ci95"]], models, primary, chance, relative)


def task_specs(
    summary: pd.DataFrame, depth: Mapping[str, int], primary: str, chance: Mapping[str, float]
) -> dict[str, Curves]:
    """:func:`curve_spec` of every task of a summary table (``chance``: task → chance Macro-F1); models are
    coloured in the order of ``depth``'s sorted names."""
    rows = summary[summary["metric"] == "macro_f1"]
    specs = {t: curve_spec(rows[rows["task"] == t], depth, primary, chance.get(t), sorted(depth)) for t in rows["task"]}
    return {task: specs[task] for task in sorted(specs) if specs[task] is not None}


def draw_tasks(run_dir: Path, specs: Mapping[str, Curves], redraw: bool = True) -> dict[str, Path]:
    """Each task's static figure, ``RUN/figures/layers_<task>.png`` (``redraw`` False: only those missing)."""
    out = {}
    for task, spec in specs.items():
        png = Path(run_dir) / "figures" / f"layers_{slug(task)}.png"
        out[task] = png if png.is_file() and not redraw else draw(spec, png, task)
    return out


# ------------------------------------------------------------------------------------------ static


def draw(spec: Curves, out_path: Path, title: str = "") -> Path:
    """The static figure (PNG and SVG): one panel per model, or one of the baselines when no model has layers."""
    multi = spec.multi
    panels = list(dict.fromkeys(trained_name(m) if trained_name(m) in multi else m for m in multi)) or ["baselines"]
    styles = model_styles(multi)
    cols = min(PANELS_PER_ROW, len(panels))
    n_rows = math.ceil(len(panels) / cols)
    fig = new_figure(2.2 + 2.9 * cols, 0.9 + 2.5 * n_rows)
    axes = np.atleast_1d(fig.subplots(n_rows, cols, sharey=True, squeeze=False)).ravel()
    base = spec.baselines.head(1) if multi else spec.baselines
    for ax, panel in zip(axes, panels):
        for model in [m for m in multi if m == panel or (is_random(m) and trained_name(m) == panel)]:
            for probe, curve in spec.curves[spec.curves["model"] == model].groupby("probe", sort=True):
                twin = " +random" if is_random(model) else ""
                label = f"{probe}{twin} ({'primary' if probe == spec.primary else 'secondary'})"
                _draw_curve(ax, curve, styles[model], probe == spec.primary, label, spec.chance is not None)
        for k, r in enumerate(base.itertuples(index=False)):
            colour, label = ("#555555", "best baseline: ") if multi else (PALETTE[k % len(PALETTE)], "")
            ax.axhline(r.mean, color=colour, lw=1.2, ls="-.", label=f"{label}{r.model} ({r.probe})")
        if spec.chance is not None:
            ax.axhline(spec.chance, color="black", lw=1.0, ls=":", label="chance")
        _style_axis(ax, panel, spec.relative)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    _figure_legend(fig, axes[: len(panels)])
    fig.supylabel("Macro-F1", fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(out_path))


def _draw_curve(ax, curve: pd.DataFrame, style, primary: bool, label: str, chance: bool) -> None:
    """One probe's curve; the primary probe with its band and (against ``chance``) its below-chance layers
    circled in red."""
    x, mean = curve["x"].to_numpy(float), curve["mean"].to_numpy(float)
    ls, lw, marker, face = (style.ls, 1.8, "o", style.face) if primary else (":", 1.0, None, None)
    ax.plot(x, mean, color=style.colour, ls=ls, lw=lw, marker=marker, ms=3.5, mfc=face, label=label)
    if primary:
        alpha = 0.10 if style.random else 0.18
        ax.fill_between(x, curve["lo"], curve["hi"], color=style.colour, alpha=alpha, lw=0)
    if primary and chance:
        low = curve[curve["below"]]
        kw = dict(ls="none", marker="o", ms=9, mfc="none", mec="#c62828", mew=1.4, label="below chance")
        ax.plot(low["x"], low["mean"], **kw)


def _style_axis(ax, panel: str, relative: bool) -> None:
    """Title, labels, limits and grid of one panel."""
    from matplotlib.ticker import MaxNLocator

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
    kw = dict(loc="outside lower center", ncol=min(5, max(1, len(legend))), fontsize="small", frameon=False)
    fig.legend(legend.values(), legend.keys(), **kw)


# ------------------------------------------------------------------------------------------ interactive


def plotly(spec: Curves) -> dict | None:
    """The Plotly figure: a line per (model, probe), the primary probe with its band, secondary probes dashed
    and legend-only; baselines as horizontal lines (the best shown); chance dotted; below-chance layers
    circled in red. None without a multi-layer model."""
    multi = spec.multi
    if not multi:
        return None
    palette = colours(spec.models)
    traces = []
    for (model, probe), curve in spec.curves.groupby(["model", "probe"], sort=False):
        traces += _curve_traces(model, probe, curve, probe == spec.primary, palette[model])
    x_max = 1.0 if spec.relative else float(spec.curves["n_layers"].max() - 1)
    traces += _reference_traces(spec.baselines, palette, x_max, spec.chance)
    low = spec.curves[spec.curves["below"]]
    if len(low):
        traces.append(_below_chance_trace(low))
    xlabel = RELATIVE_DEPTH if spec.relative else "layer"
    layout = plotly_layout(
        380,
        xaxis={"title": {"text": xlabel}, "zeroline": False, "gridcolor": "#eeeeee"},
        yaxis={"title": {"text": "Macro-F1"}, "range": [0, 1.02], "gridcolor": "#eeeeee"},
        legend={"groupclick": "toggleitem", "font": {"size": 11}},
        hovermode="closest",
    )
    return {"data": traces, "layout": layout}


def _curve_traces(model: str, probe: str, curve: pd.DataFrame, is_primary: bool, colour: str) -> list[dict]:
    x = [float(v) for v in curve["x"]]
    custom = [
        [int(r.layer), int(r.n_layers) - 1, r.layer / max(r.n_layers - 1, 1), float(r.ci), float(r.lo), float(r.hi)]
        + [int(r.n)]
        for r in curve.itertuples(index=False)
    ]
    traces = []
    if is_primary:
        traces.append(
            {
                "type": "scatter",
                "x": x + x[::-1],
                "y": [*map(float, curve["hi"]), *map(float, curve["lo"][::-1])],
                "mode": "lines",  # plotly's default adds markers under 20 points: stray dots at the band's edge
                "fill": "toself",
                "fillcolor": rgba(colour, 0.13),
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
                "legendgroup": model,
                "name": f"{model} 95% CI",
            }
        )
    role = "primary probe" if is_primary else "secondary probe"
    hover = (
        f"<b>{html.escape(model)} · {html.escape(probe)}</b> ({role})<br>"
        "layer %{customdata[0]} of 0–%{customdata[1]} (relative depth %{customdata[2]:.2f})<br>"
        "Macro-F1 %{y:.3f} ± %{customdata[3]:.3f} [%{customdata[4]:.3f}, %{customdata[5]:.3f}]<br>"
        "n = %{customdata[6]} folds<extra></extra>"
    )
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": x,
            "y": [float(v) for v in curve["mean"]],
            "customdata": custom,
            "name": probe if is_primary else f"{probe} (secondary)",
            "legendgroup": model,
            "legendgrouptitle": {"text": model},
            "line": {"color": colour, "width": 2.4 if is_primary else 1.4, "dash": "solid" if is_primary else "dash"},
            "marker": {"size": 6 if is_primary else 4},
            "visible": True if is_primary else "legendonly",
            "hovertemplate": hover,
        }
    )
    return traces


def _below_chance_trace(low: pd.DataFrame) -> dict:
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [float(v) for v in low["x"]],
        "y": [float(v) for v in low["mean"]],
        "text": [f"{r.model} layer {int(r.layer)} ({r.mean:.3f})" for r in low.itertuples(index=False)],
        "name": "below chance",
        "marker": {"symbol": "circle-open", "size": 13, "line": {"width": 2, "color": "#c62828"}},
        "hovertemplate": "%{text}: below chance<extra></extra>",
    }


def _reference_traces(base: pd.DataFrame, palette: Mapping[str, str], x_max: float, chance: float | None) -> list:
    """Horizontal lines: one per baseline model (best first, the others legend-only), and chance (dotted)."""
    traces = []
    for k, r in enumerate(base.itertuples(index=False)):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [0.0, x_max],
                "y": [float(r.mean)] * 2,
                "name": f"{r.model} (baseline, {r.probe})",
                "legendgroup": "baselines",
                "legendgrouptitle": {"text": "baselines"},
                "line": {"color": palette[r.model], "width": 1.6, "dash": "dashdot"},
                "visible": True if k == 0 else "legendonly",
                "hovertemplate": f"{html.escape(str(r.model))}: Macro-F1 {r.mean:.3f} ± {fmt(r.ci95)}<extra></extra>",
            }
        )
    if chance is not None:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [0.0, x_max],
                "y": [chance] * 2,
                "name": "chance",
                "line": {"color": "#000000", "width": 1.2, "dash": "dot"},
                "hovertemplate": f"chance {chance:.3f}<extra></extra>",
            }
        )
    return traces
