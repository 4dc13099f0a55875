"""Interactive figures for report.html: Plotly specifications, drawn by plotly.js inlined in the page.

Why Plotly: a pure-Python wheel whose package carries the whole plotly.js bundle (4.8 MB minified), so
the report inlines it once and stays one file that loads nothing from anywhere (the page's
Content-Security-Policy forbids it); hover, zoom and legend toggling come built in. Vega-Lite would be
smaller in the page (~1 MB) but needs a native helper (vl-convert) to get its JavaScript offline.

Each figure is a JSON specification in a ``<script type="application/json">`` block beside an empty
``<div class="plot">``; :data:`LOADER_JS` draws a figure when it becomes visible (figures inside closed
``<details>`` are drawn when opened, so they get their real width). The static PNG/SVG of every figure
stay in ``figures/`` for papers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .headline import NORMALISED_RANGE
from .plotly_bundle import BOOT_JS, LOADER_JS, plotly_js, plotly_js_packed

# matplotlib's tab10, so a model has the same colour in the static and the interactive figures
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", "size": 12}
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
# The chance-normalised scale: red below chance, grey at chance, blue up to a perfect score.
NORMALISED_SCALE = [[0.0, "#b2182b"], [0.2, "#f4f4f4"], [0.55, "#6baed6"], [1.0, "#08306b"]]


def _json(spec: dict) -> str:
    """JSON safe inside a <script> element (no ``</`` can close it)."""
    return json.dumps(spec, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def figure_html(key: str, spec: dict, caption: str, number: int | None = None, height: int | None = None) -> str:
    """An interactive figure: the plot's div, its JSON specification and a caption."""
    spec = {**spec, "config": CONFIG}
    style = f" style='min-height:{int(height)}px'" if height else ""
    label = f"<b>Figure {number}.</b> " if number is not None else ""
    return (
        f"<figure class='interactive' id='fig-{html.escape(key, quote=True)}'>"
        f"<div class='plot' data-spec='spec-{html.escape(key, quote=True)}'{style}></div>"
        f"<script type='application/json' id='spec-{html.escape(key, quote=True)}'>{_json(spec)}</script>"
        f"<figcaption>{label}{html.escape(caption)}</figcaption></figure>"
    )


def colours(models: Sequence[str]) -> dict[str, str]:
    """A colour per model, in the given order."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _num(v) -> float | None:
    """A finite float for JSON, else None (JSON has no NaN)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _f(v, digits: int = 3, signed: bool = False) -> str:
    f = _num(v)
    if f is None:
        return "–"
    return f"{f:+.{digits}f}" if signed else f"{f:.{digits}f}"


def _layout(height: int, **kw) -> dict:
    return {
        "height": height,
        "font": FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "hoverlabel": {"align": "left"},
        **kw,
    }


# ------------------------------------------------------------------------------------------ headline


def _headline_cell(r) -> tuple[str, str]:
    """(cell text, hover text) of one headline row."""
    ci = f" ± {_f(r.ci95)}" if _num(r.ci95) is not None else ""
    text = _f(r.score, 2)
    if r.kind == "model" and _num(r.gain) is not None:
        gain_ci = f"±{_f(r.gain_ci95, 2)}" if _num(r.gain_ci95) is not None else ""
        text += f"<br>{_f(r.gain, 2, signed=True)}{gain_ci}"
    lines = [
        f"<b>{html.escape(str(r.model))} · {html.escape(str(r.task))}</b>",
        f"best layer {r.layer} of 0–{r.num_layers - 1} (relative depth {_f(r.relative_depth, 2)}), probe {r.probe}",
        f"Macro-F1 {_f(r.score)}{ci} [{_f(r.score_lo)}, {_f(r.score_hi)}], n = {r.n_folds} folds",
        f"chance {_f(r.chance)}; normalised {_f(r.normalised)} [{_f(r.normalised_lo)}, {_f(r.normalised_hi)}]",
    ]
    if r.kind == "model" and isinstance(r.baseline, str):
        lines.append(
            f"best baseline {html.escape(r.baseline)} {_f(r.baseline_score)}; gain {_f(r.gain, signed=True)}"
            + (f" ± {_f(r.gain_ci95)}" if _num(r.gain_ci95) is not None else "")
        )
    if _num(r.oof) is not None and _num(r.oof_lo) is not None:
        lines.append(
            f"spread of the out-of-fold score at this layer {_f(r.oof)} [{_f(r.oof_lo)}, {_f(r.oof_hi)}] "
            "(bootstrap over the task's unit, fitted probes)"
        )
    elif _num(r.oof) is not None:
        lines.append(f"out-of-fold Macro-F1 {_f(r.oof)} (no bootstrap interval: too few units per class)")
    if _num(r.p_best) is not None:
        spread = r.best_layer_distribution or f"{float(r.p_best):.0%}"
        lines.append(f"best layer over resamples: {html.escape(str(spread))}")
    if _num(r.p_value) is not None:
        lines.append(f"selection-aware permutation test: p = {float(r.p_value):.3g}")
    return text, "<br>".join(lines)


def headline_figure(headline: pd.DataFrame) -> dict | None:
    """Model × task heatmap of the best-layer Macro-F1 on the chance-normalised scale; each cell shows the
    score and, for models, the gain over the best baseline ± its 95 % interval."""
    if headline.empty:
        return None
    tasks = sorted(headline["task"].unique())
    rows = list(dict.fromkeys(headline["model"]))
    kind = dict(zip(headline["model"], headline["kind"]))
    z = [[None] * len(tasks) for _ in rows]
    text = [[""] * len(tasks) for _ in rows]
    hover = [["no result"] * len(tasks) for _ in rows]
    for r in headline.itertuples(index=False):
        i, j = rows.index(r.model), tasks.index(r.task)
        value = _num(r.normalised)
        z[i][j] = None if value is None else float(np.clip(value, *NORMALISED_RANGE))
        text[i][j], hover[i][j] = _headline_cell(r)
    labels = [f"{m} (baseline)" if kind[m] == "baseline" else m for m in rows]
    trace = {
        "type": "heatmap",
        "x": tasks,
        "y": labels,
        "z": z,
        "zmin": NORMALISED_RANGE[0],
        "zmax": NORMALISED_RANGE[1],
        "colorscale": NORMALISED_SCALE,
        "text": text,
        "texttemplate": "%{text}",
        "hovertext": hover,
        "hovertemplate": "%{hovertext}<extra></extra>",
        "xgap": 2,
        "ygap": 2,
        "colorbar": {
            "title": {"text": "(F1 − chance)<br>/ (1 − chance)", "side": "right"},
            "tickvals": [-0.25, 0, 0.5, 1],
            "ticktext": ["below", "chance", "0.5", "perfect"],
        },
    }
    layout = _layout(
        140 + 46 * len(rows),
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


# ------------------------------------------------------------------------------------------ layer curves


def _x_axis(depth: Mapping[str, int], models: Sequence[str]) -> tuple[bool, str]:
    """Relative depth when the multi-layer models of the figure differ in depth, else the layer index."""
    relative = len({int(depth[m]) for m in models}) > 1
    return relative, "relative depth (0 = input embedding, 1 = last layer)" if relative else "layer"


def _curve_hover(model: str, probe: str, role: str) -> str:
    return (
        f"<b>{html.escape(model)} · {html.escape(probe)}</b> ({role})<br>"
        "layer %{customdata[0]} of 0–%{customdata[1]} (relative depth %{customdata[2]:.2f})<br>"
        "Macro-F1 %{y:.3f} ± %{customdata[3]:.3f} [%{customdata[4]:.3f}, %{customdata[5]:.3f}]<br>"
        "n = %{customdata[6]} folds<extra></extra>"
    )


def _curve_traces(model: str, probe: str, curve: pd.DataFrame, n: int, relative: bool, primary: str, colour: str):
    layers = curve["layer"].astype(int).to_numpy()
    depth = layers / max(n - 1, 1)
    x = depth if relative else layers
    mean = curve["mean"].to_numpy(float)
    ci = curve["ci95"].fillna(0).to_numpy(float)
    lo, hi = np.clip(mean - ci, 0, 1), np.clip(mean + ci, 0, 1)  # a Macro-F1 cannot leave [0, 1]
    custom = [
        [int(layer), n - 1, float(d), float(c), float(a), float(b), int(k)]
        for layer, d, c, a, b, k in zip(layers, depth, ci, lo, hi, curve["n"].astype(int))
    ]
    is_primary = probe == primary
    role = "primary probe" if is_primary else "secondary probe"
    traces = []
    if is_primary:
        traces.append(
            {
                "type": "scatter",
                "x": [*map(float, x), *map(float, x[::-1])],
                "y": [*map(float, hi), *map(float, lo[::-1])],
                "mode": "lines",  # plotly's default adds markers under 20 points: stray dots at the band's edge
                "fill": "toself",
                "fillcolor": _rgba(colour, 0.13),
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
                "legendgroup": model,
                "name": f"{model} 95% CI",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [float(v) for v in x],
            "y": [float(v) for v in mean],
            "customdata": custom,
            "name": probe if is_primary else f"{probe} (secondary)",
            "legendgroup": model,
            "legendgrouptitle": {"text": model},
            "line": {"color": colour, "width": 2.4 if is_primary else 1.4, "dash": "solid" if is_primary else "dash"},
            "marker": {"size": 6 if is_primary else 4},
            "visible": True if is_primary else "legendonly",
            "hovertemplate": _curve_hover(model, probe, role),
        }
    )
    return traces


def _below_chance_trace(points: list[tuple[float, float, str]]) -> dict:
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "text": [p[2] for p in points],
        "name": "below chance",
        "marker": {"symbol": "circle-open", "size": 13, "line": {"width": 2, "color": "#c62828"}},
        "hovertemplate": "%{text}: below chance<extra></extra>",
    }


def curves_figure(
    rows: pd.DataFrame,
    depth: Mapping[str, int],
    primary: str,
    chance: float | None = None,
    order: Sequence[str] | None = None,
) -> dict | None:
    """Macro-F1 per layer of one task: a line per (model, probe), the primary probe with its 95 % band
    (clipped to [0, 1]), secondary probes dashed and hidden until clicked in the legend; baselines as
    horizontal lines (the best one shown, the others in the legend); chance dotted; primary-probe layers
    whose mean is below chance circled in red. ``rows``: the task's summary rows of metric macro_f1."""
    rows = rows[rows["layer"].notna() & ~rows["probe"].astype(str).str.startswith("zeroshot:")]
    rows = rows[rows["probe"] != "kmeans"].dropna(subset=["mean"])
    if rows.empty:
        return None
    multi = [m for m in (order or sorted(rows["model"].unique())) if int(depth.get(m, 1)) > 1 and m in set(rows.model)]
    if not multi:
        return None
    relative, xlabel = _x_axis(depth, multi)
    palette = colours(order or sorted(rows["model"].unique()))
    traces, below = [], []
    for model in multi:
        n = int(depth[model])
        for probe, curve in rows[rows["model"] == model].groupby("probe", sort=True):
            curve = curve.sort_values("layer")
            traces += _curve_traces(model, probe, curve, n, relative, primary, palette[model])
            if probe == primary and chance is not None and np.isfinite(chance):
                for r in curve[curve["mean"] < chance].itertuples(index=False):
                    x = int(r.layer) / (n - 1) if relative else int(r.layer)
                    below.append((float(x), float(r.mean), f"{model} layer {int(r.layer)} ({r.mean:.3f})"))
    x_max = 1.0 if relative else float(max(int(depth[m]) for m in multi) - 1)
    base = rows[~rows["model"].isin(multi) & (rows["probe"] == primary)].sort_values("mean", ascending=False)
    traces += _reference_traces(base.drop_duplicates("model"), palette, x_max, chance)
    if below:
        traces.append(_below_chance_trace(below))
    layout = _layout(
        380,
        xaxis={"title": {"text": xlabel}, "zeroline": False, "gridcolor": "#eeeeee"},
        yaxis={"title": {"text": "Macro-F1"}, "range": [0, 1.02], "gridcolor": "#eeeeee"},
        legend={"groupclick": "toggleitem", "font": {"size": 11}},
        hovermode="closest",
    )
    return {"data": traces, "layout": layout}


def _reference_traces(base: pd.DataFrame, palette: Mapping[str, str], x_max: float, chance: float | None) -> list[dict]:
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
                "hovertemplate": f"{html.escape(str(r.model))}: Macro-F1 {r.mean:.3f} ± {_f(r.ci95)}<extra></extra>",
            }
        )
    if chance is not None and np.isfinite(chance):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [0.0, x_max],
                "y": [float(chance)] * 2,
                "name": "chance",
                "line": {"color": "#000000", "width": 1.2, "dash": "dot"},
                "hovertemplate": f"chance {chance:.3f}<extra></extra>",
            }
        )
    return traces


# ------------------------------------------------------------------------------------------ fingerprints


def fingerprint_figure(table: pd.DataFrame, probe: str, order: Sequence[str] | None = None) -> dict | None:
    """Depth fingerprints on relative depth: per task (primary probe) and model, the peak layer (dot) and the
    first layer reaching 90 % of the rise above chance (bar), each with its bootstrap interval."""
    rows = table[(table["probe"] == probe) & (table["metric"] == "macro_f1")]
    if rows.empty:
        return None
    tasks = sorted(rows["task"].unique())
    models = list(order or sorted(rows["model"].unique()))
    models = [m for m in models if m in set(rows["model"])]
    palette = colours(order or models)
    step = 1.0 / (len(models) + 1)
    traces = []
    for j, model in enumerate(models):
        peak, d90 = _fingerprint_points(rows[rows["model"] == model].set_index("task"), tasks, model, -step * (j + 1))
        for name, pts, symbol in (("peak", peak, "circle"), ("90 % of rise", d90, "line-ns-open")):
            if pts["x"]:
                traces.append(_fingerprint_trace(name, pts, symbol, model, palette[model]))
    layout = _layout(
        90 + 34 * len(tasks) * max(1, len(models)) // 2 + 40 * len(tasks),
        xaxis={
            "title": {"text": "relative depth (0 = input embedding, 1 = last layer)"},
            "range": [-0.03, 1.03],
            "gridcolor": "#eeeeee",
        },
        yaxis={
            "tickvals": [-i - 0.5 for i in range(len(tasks))],
            "ticktext": tasks,
            "range": [-len(tasks), 0],
            "showgrid": False,
            "zeroline": False,
            "automargin": True,  # room for the longest task name
        },
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": -i,
                "y1": -i,
                "line": {"color": "#dddddd", "width": 1},
            }
            for i in range(1, len(tasks))
        ],
        legend={"groupclick": "togglegroup", "font": {"size": 11}},
        hovermode="closest",
    )
    return {"data": traces, "layout": layout}


def _fingerprint_points(sel: pd.DataFrame, tasks: Sequence[str], model: str, offset: float) -> tuple[dict, dict]:
    """One model's peak and 90 %-of-rise points (x, y, interval lo/hi, hover text), a row per task at -i + offset.
    A curve without intervals (too few units or folds: ``note``) gets no error bar and says why."""
    peak, d90 = {"x": [], "y": [], "lo": [], "hi": [], "t": []}, {"x": [], "y": [], "lo": [], "hi": [], "t": []}
    for i, task in enumerate(tasks):
        if task not in sel.index:
            continue
        r = sel.loc[task]
        y = -i + offset
        note = r.get("note") if isinstance(r.get("note"), str) else ""
        share = f"; this layer in {r.peak_share:.0%} of resamples" if not note else ""
        hover = (
            f"<b>{html.escape(model)} · {html.escape(task)}</b><br>peak at depth {r.peak_depth:.2f} "
            f"{_bracket(r.peak_depth_lo, r.peak_depth_hi)}(layer {int(r.peak_layer)}, "
            f"Macro-F1 {r.peak_score:.3f}{share})"
        )
        if int(r.d90_layer) >= 0:
            hover += f"<br>90 % of the rise at {r.d90_depth:.2f} {_bracket(r.d90_depth_lo, r.d90_depth_hi)}"
            d90["x"].append(float(r.d90_depth))
            d90["y"].append(y)
            d90["lo"].append(_num(r.d90_depth - r.d90_depth_lo) or 0.0)
            d90["hi"].append(_num(r.d90_depth_hi - r.d90_depth) or 0.0)
            d90["t"].append(hover)
        else:
            hover += "<br>never rises above chance"
        peak["x"].append(float(r.peak_depth))
        peak["y"].append(y)
        peak["lo"].append(_num(r.peak_depth - r.peak_depth_lo) or 0.0)
        peak["hi"].append(_num(r.peak_depth_hi - r.peak_depth) or 0.0)
        how = f"no interval: {html.escape(note)}" if note else f"bootstrap over {int(r.n_folds)} folds"
        peak["t"].append(hover + f"<br>{how}")
    return peak, d90


def _bracket(lo, hi) -> str:
    """ "[0.20, 0.40] " for a finite interval, else ""."""
    return f"[{lo:.2f}, {hi:.2f}] " if _num(lo) is not None and _num(hi) is not None else ""


def _fingerprint_trace(name: str, pts: dict, symbol: str, model: str, colour: str) -> dict:
    """A marker trace of fingerprint points with their asymmetric bootstrap intervals."""
    return {
        "type": "scatter",
        "mode": "markers",
        "x": pts["x"],
        "y": pts["y"],
        "text": pts["t"],
        "hovertemplate": "%{text}<extra></extra>",
        "name": f"{name}",
        "legendgroup": model,
        "legendgrouptitle": {"text": model},
        "marker": {
            "symbol": symbol,
            "size": 10 if symbol == "circle" else 16,
            "color": colour,
            "line": {"width": 3, "color": colour},
        },
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": pts["hi"],
            "arrayminus": pts["lo"],
            "color": colour,
            "thickness": 1.2,
            "width": 3,
        },
    }


__all__ = [
    "BOOT_JS",
    "LOADER_JS",
    "curves_figure",
    "figure_html",
    "fingerprint_figure",
    "headline_figure",
    "plotly_js",
    "plotly_js_packed",
]
