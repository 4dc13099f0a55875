"""Depth fingerprints (:mod:`speechprobe.analysis.fingerprints`) on relative depth, so models with 5, 13 or
33 layers compare directly: per task (primary probe) and model, the first layer reaching 90 % of the rise
above chance (bar) and the peak layer (circle), each with its bootstrap interval. One spec
(:func:`fingerprint_spec`) and two renderers: :func:`draw` (``figures/fingerprints.png``, tasks then cues;
random-init models beside their twin) and :func:`plotly` (the report's summary, tasks, hover with the values).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .base import (
    RELATIVE_DEPTH,
    colours,
    contrast_note,
    model_styles,
    new_figure,
    num,
    plotly_layout,
    save_figure,
    twin_order,
)


@dataclass
class Fingerprints:
    """Rows of the figure: (label, kind ``task`` or ``cue``, that row's fingerprints), and the models."""

    entries: list[tuple[str, str, pd.DataFrame]]
    models: list[str]  # twins together: a model, then its +random control

    def of(self, kind: str) -> list[tuple[str, pd.DataFrame]]:
        return [(label, rows) for label, k, rows in self.entries if k == kind]


def fingerprint_spec(table: pd.DataFrame, probe: str | None) -> Fingerprints | None:
    """Each task at the primary ``probe`` (Macro-F1), then each cue (R²), from ``fingerprints.csv``'s table;
    None when it has none."""
    tasks = table[(table["probe"] == probe) & (table["metric"] == "macro_f1")]
    cues = table[table["metric"] == "r2"]
    entries = [(str(t), "task", rows) for t, rows in tasks.groupby("task", sort=True)]
    if len(cues):
        name = cues["target"].where(cues["target"] != "", cues["task"])
        entries += [(f"cue: {c}", "cue", rows) for c, rows in cues.groupby(name, sort=True)]
    if not entries:
        return None
    return Fingerprints(entries, twin_order(table["model"]))


# ------------------------------------------------------------------------------------------ static


def draw(spec: Fingerprints, out_path: Path) -> Path:
    """The static figure (PNG and SVG): a row per task and cue, a line per model in it."""
    from matplotlib.lines import Line2D

    models, entries = spec.models, spec.entries
    styles = model_styles(models)
    step = 1.0 / (len(models) + 1)
    fig = new_figure(9.5, 1.2 + 0.32 * len(entries) * len(models) + 0.3 * len(entries))
    ax = fig.subplots()
    for i, (_, _, rows) in enumerate(entries):
        for j, model in enumerate(models):
            sel = rows[rows["model"] == model]
            if len(sel):
                _draw_point(ax, -i - step * (j + 1), sel.iloc[0], styles[model])
        if i:
            ax.axhline(-i, color="#cccccc", lw=0.8)
    ax.set_yticks([-i - 0.5 for i in range(len(entries))], [label for label, _, _ in entries])
    ax.set_ylim(-len(entries), 0)
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel(RELATIVE_DEPTH)
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color=styles[m].colour, ls=styles[m].ls, label=m) for m in models]
    handles += [
        Line2D([], [], color="black", marker="|", ms=10, mew=2.5, ls="none", label="90 % of the rise above chance"),
        Line2D([], [], color="black", marker="o", ls="none", label="peak"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return save_figure(fig, Path(out_path))


def _draw_point(ax, y: float, r, style) -> None:
    """The 90 % point (bar) and the peak (circle), their intervals, and a line between them."""
    colour = style.colour
    if r.d90_layer >= 0:
        ax.plot([r.d90_depth, r.peak_depth], [y, y], color=colour, ls=style.ls, lw=1.4)
        ax.plot([r.d90_depth_lo, r.d90_depth_hi], [y + 0.09, y + 0.09], color=colour, lw=1.0, alpha=0.6)
        ax.plot(r.d90_depth, y, marker="|", ms=14, mew=2.5, color=colour, ls="none")
    ax.plot([r.peak_depth_lo, r.peak_depth_hi], [y - 0.09, y - 0.09], color=colour, lw=1.0, alpha=0.6)
    ax.plot(r.peak_depth, y, marker="o", ms=7, color=colour, mfc=style.face, ls="none")


def plot_fingerprints(table: pd.DataFrame, probe: str | None, out_path: Path) -> tuple[Path, str] | None:
    """``fingerprints.png`` and its caption; None when there is no multi-layer curve."""
    spec = fingerprint_spec(table, probe)
    if spec is None:
        return None
    n_folds = int(table["n_folds"].max())
    cues = " and acoustic cue (ridge R²; chance is 0)" if (table["metric"] == "r2").any() else ""
    caption = (
        f"Depth fingerprints: for each task (probe {probe}, Macro-F1){cues}, each model's first layer reaching "
        "90 % of its score's rise above chance (vertical bar) and its peak layer (circle), on relative depth so "
        "that models with different numbers of layers compare directly. Thin bars above and below: 95 % "
        f"intervals from a bootstrap over the {n_folds} folds."
    )
    note = contrast_note(spec.models)
    return draw(spec, out_path), caption + (" " + note if note else "")


# ------------------------------------------------------------------------------------------ interactive


def plotly(spec: Fingerprints, order: Sequence[str] | None = None) -> dict | None:
    """The interactive figure of the tasks; ``order``: the models' colour order (as in the layer curves)."""
    entries = spec.of("task")
    if not entries:
        return None
    tasks = [label for label, _ in entries]
    rows = pd.concat([r for _, r in entries])
    models = [m for m in (order or sorted(rows["model"].unique())) if m in set(rows["model"])]
    palette = colours(order or models)
    step = 1.0 / (len(models) + 1)
    traces = []
    for j, model in enumerate(models):
        peak, d90 = _points(rows[rows["model"] == model].set_index("task"), tasks, model, -step * (j + 1))
        for name, pts, symbol in (("peak", peak, "circle"), ("90 % of rise", d90, "line-ns-open")):
            if pts["x"]:
                traces.append(_trace(name, pts, symbol, model, palette[model]))
    separators = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": -i, "y1": -i} for i in range(1, len(tasks))]
    layout = plotly_layout(
        90 + 34 * len(tasks) * max(1, len(models)) // 2 + 40 * len(tasks),
        xaxis={"title": {"text": RELATIVE_DEPTH}, "range": [-0.03, 1.03], "gridcolor": "#eeeeee"},
        yaxis={
            "tickvals": [-i - 0.5 for i in range(len(tasks))],
            "ticktext": tasks,
            "range": [-len(tasks), 0],
            "showgrid": False,
            "zeroline": False,
            "automargin": True,  # room for the longest task name
        },
        shapes=[{**s, "line": {"color": "#dddddd", "width": 1}} for s in separators],
        legend={"groupclick": "togglegroup", "font": {"size": 11}},
        hovermode="closest",
    )
    return {"data": traces, "layout": layout}


def _points(sel: pd.DataFrame, tasks: Sequence[str], model: str, offset: float) -> tuple[dict, dict]:
    """One model's peak and 90 %-of-rise points (x, y, interval lo/hi, hover text), a row per task at -i + offset.
    A curve without intervals (too few units or folds: ``note``) gets no error bar and says why."""
    peak, d90 = {"x": [], "y": [], "lo": [], "hi": [], "t": []}, {"x": [], "y": [], "lo": [], "hi": [], "t": []}
    for i, task in enumerate(tasks):
        if task not in sel.index:
            continue
        r = sel.loc[task]
        note = r.get("note") if isinstance(r.get("note"), str) else ""
        share = f"; this layer in {r.peak_share:.0%} of resamples" if not note else ""
        hover = (
            f"<b>{html.escape(model)} · {html.escape(task)}</b><br>peak at depth {r.peak_depth:.2f} "
            f"{_bracket(r.peak_depth_lo, r.peak_depth_hi)}(layer {int(r.peak_layer)}, "
            f"Macro-F1 {r.peak_score:.3f}{share})"
        )
        if int(r.d90_layer) >= 0:
            hover += f"<br>90 % of the rise at {r.d90_depth:.2f} {_bracket(r.d90_depth_lo, r.d90_depth_hi)}"
            _add(d90, -i + offset, r.d90_depth, r.d90_depth_lo, r.d90_depth_hi, hover)
        else:
            hover += "<br>never rises above chance"
        how = f"no interval: {html.escape(note)}" if note else f"bootstrap over {int(r.n_folds)} folds"
        _add(peak, -i + offset, r.peak_depth, r.peak_depth_lo, r.peak_depth_hi, hover + f"<br>{how}")
    return peak, d90


def _add(pts: dict, y: float, x: float, lo: float, hi: float, text: str) -> None:
    """A point with its asymmetric interval (none where the bounds are missing)."""
    pts["x"].append(float(x))
    pts["y"].append(y)
    pts["lo"].append(num(x - lo) or 0.0)
    pts["hi"].append(num(hi - x) or 0.0)
    pts["t"].append(text)


def _bracket(lo, hi) -> str:
    """ "[0.20, 0.40] " for a finite interval, else ""."""
    return f"[{lo:.2f}, {hi:.2f}] " if num(lo) is not None and num(hi) is not None else ""


def _trace(name: str, pts: dict, symbol: str, model: str, colour: str) -> dict:
    """A marker trace of fingerprint points with their asymmetric bootstrap intervals."""
    return {
        "type": "scatter",
        "mode": "markers",
        "x": pts["x"],
        "y": pts["y"],
        "text": pts["t"],
        "hovertemplate": "%{text}<extra></extra>",
        "name": name,
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
