"""The context-mixing figure of one task (:mod:`speechprobe.analysis.mixing`): "how local is each layer".

Three panels on relative depth: the primary probe's Macro-F1, the mean attention distance (ms) and the share a
frame keeps of itself by value zeroing, each model a line (its ``+random`` twin dashed in its colour), the 95 %
interval over clips shaded.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import (
    RELATIVE_DEPTH,
    colours,
    contrast_note,
    is_random,
    num,
    plotly_layout,
    save_figure,
    task_panels,
    trained_name,
    twin_order,
)
from .mdl import _curve

PANELS = (("attention_distance_ms", "attention distance (ms)"), ("mixing_self", "value zeroing: share kept by a frame"))


def plot_mixing(
    table: pd.DataFrame, scores: pd.DataFrame, probe: str | None, out_path: Path, seconds: float | None = None
) -> tuple[Path, str] | None:
    """``mixing_<task>.png`` for the one task of ``table`` (mixing.csv rows) beside its probe ``scores``
    (model, layer, mean), and its caption (``seconds``: the clips' centred window); None when empty."""
    rows = table[table["class"].astype(str) == "all"]
    if rows.empty:
        return None
    task, models, styles, fig, axes = task_panels(rows, 14.0, 3)
    for model in models:
        acc = scores[scores["model"] == model].sort_values("layer")
        if not acc.empty:
            depth = acc["layer"].to_numpy(float) / max(len(acc) - 1, 1)
            _curve(axes[0], depth, acc["mean"].to_numpy(float), None, styles[model], model)
        for ax, (metric, _) in zip(axes[1:], PANELS):
            curve = rows[(rows["model"] == model) & (rows["metric"] == metric)].sort_values("layer")
            x, y = curve["relative_depth"].to_numpy(float), curve["mean"].to_numpy(float)
            _curve(ax, x, y, None, styles[model], model)
            ax.fill_between(
                x,
                curve["low"].to_numpy(float),
                curve["high"].to_numpy(float),
                color=styles[model].colour,
                alpha=0.12,
                lw=0,
            )
    axes[0].set_ylabel(f"Macro-F1 ({probe})")
    for ax, (_, label) in zip(axes[1:], PANELS):
        ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.set_xlabel(RELATIVE_DEPTH)
    fig.suptitle(task)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    n = sampled(rows)
    caption = (
        f"How local is each layer on {task}: left, Macro-F1 of the {probe} probe per layer; middle, the mean "
        "distance between a frame and the frames it attends to (ms, over real frames, mean over heads); right, the "
        "share of a frame's value-zeroing mixing that comes from the frame itself (Mohebbi et al. 2023; 1 = no "
        f"mixing). Mean over {n} with the 95 % t interval shaded"
        + (f", each on its centred {seconds:g} s at most." if seconds else ".")
    )
    k = int(rows["query_frames"].max())
    caption += f" Value zeroing on a stratified sample of {k} query frames per clip." if k else ""
    note = contrast_note(models)
    return save_figure(fig, Path(out_path)), caption + (" " + note if note else "")


def plotly(table: pd.DataFrame) -> dict | None:
    """The interactive figure: attention distance and value-zeroing self share on relative depth, one line per
    model (``+random`` dashed in its model's colour), 95 % intervals as error bars; None when empty."""
    rows = table[table["class"].astype(str) == "all"]
    if rows.empty:
        return None
    models = twin_order(rows["model"])
    palette = colours([trained_name(m) for m in models])
    traces = []
    for k, (metric, label) in enumerate(PANELS):
        for model in models:
            c = rows[(rows["model"] == model) & (rows["metric"] == metric)].sort_values("layer")
            mean, low, high = (c[col].to_numpy(float) for col in ("mean", "low", "high"))
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": model,
                    "legendgroup": model,
                    "showlegend": k == 0,
                    "x": [num(v) for v in c["relative_depth"]],
                    "y": [num(v) for v in mean],
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [num(v) for v in high - mean],
                        "arrayminus": [num(v) for v in mean - low],
                    },
                    "text": [f"layer {int(v)}" for v in c["layer"]],
                    "hovertemplate": f"%{{text}}: %{{y:.3g}}<extra>{model} · {label}</extra>",
                    "line": {"color": palette[trained_name(model)], "dash": "dash" if is_random(model) else "solid"},
                    "xaxis": "x" if k == 0 else "x2",
                    "yaxis": "y" if k == 0 else "y2",
                }
            )
    depth = {"title": {"text": RELATIVE_DEPTH}, "range": [-0.03, 1.03]}
    return {
        "data": traces,
        "layout": plotly_layout(
            380,
            xaxis={**depth, "domain": [0, 0.44]},
            xaxis2={**depth, "domain": [0.56, 1], "anchor": "y2"},
            yaxis={"title": {"text": PANELS[0][1]}},
            yaxis2={"title": {"text": PANELS[1][1]}, "anchor": "x2"},
            hovermode="closest",
        ),
    }


def sampled(rows: pd.DataFrame) -> str:
    """What the means of a mixing or attribution table are over: ``"6 sampled clips"``, or ``"4 speakers (6
    sampled clips; a speaker's clips averaged first)"``."""
    clips, unit = int(rows["n_clips"].max()), str(rows["unit"].iloc[0])
    if unit == "clip":
        return f"{clips} sampled clips"
    return f"{int(rows['n_units'].max())} {unit}s ({clips} sampled clips; a {unit}'s clips averaged first)"
