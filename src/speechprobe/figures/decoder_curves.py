"""The decoder-layers figure (:mod:`speechprobe.analysis.decoder_layers`) of one (model, task): the encoder probe,
the decoder-state probe and the logit lens on one depth axis (encoder layers, then decoder layers), each with its
95 % band: static (matplotlib) and its interactive twin (Plotly, drawn by the report instead of the PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import PALETTE, new_figure, num, plotly_layout, rgba, save_figure, save_plotly

#: curve -> (legend text, colour); decoder-probe rules other than these take the next colours
SIDES = {
    "encoder_probe": ("encoder probe", PALETTE[0]),
    "decoder_probe:last": ("decoder-state probe (last prompt position)", PALETTE[1]),
    "decoder_probe:audio_mean": ("decoder-state probe (mean over audio tokens)", PALETTE[4]),
    "lens_bc": ("logit lens (batch-calibrated)", PALETTE[2]),
    "lens": ("logit lens (raw)", PALETTE[7]),
}


def _curves(table: pd.DataFrame):
    for side, part in table.groupby("side", sort=False):
        text, colour = SIDES.get(str(side), (str(side), PALETTE[5]))
        yield text, colour, part.sort_values("depth"), side == "lens"


def plot_decoder_curves(table: pd.DataFrame, chance: float, out_path: Path) -> Path | None:
    """``out_path`` from one (model, task)'s rows of ``decoder_layers.csv``; None when it has no decoder rows."""
    if table.empty or not table["decoder"].astype(bool).any():
        return None
    fig = new_figure(8.0, 3.8)
    ax = fig.subplots()
    for text, colour, part, faint in _curves(table):
        x, y = part["depth"].to_numpy(float), part["macro_f1"].to_numpy(float)
        ax.plot(x, y, marker="o", ms=3, color=colour, ls=":" if faint else "-", alpha=0.6 if faint else 1, label=text)
        lo, hi = part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float)
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=colour, alpha=0.12, lw=0)
    first = float(table.loc[table["decoder"].astype(bool), "depth"].min())
    ax.axvline(first - 0.5, color="black", lw=0.8, ls=":")
    ax.axhline(chance, color="grey", lw=0.8)
    ticks = table.drop_duplicates("depth").sort_values("depth")
    ax.set_xticks(ticks["depth"], ticks["layer"], rotation=90, fontsize="x-small")
    ax.set_ylim(0, 1)
    ax.set_xlabel("depth: encoder layers, then decoder layers")
    ax.set_ylabel("Macro-F1 (95% interval)")
    ax.set_title(f"{table['model'].iloc[0]} · {table['task'].iloc[0]}", fontsize="small")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    png = save_figure(fig, Path(out_path))
    save_plotly(decoder_curves_plotly(table, chance), png)
    return png


def decoder_curves_plotly(table: pd.DataFrame, chance: float) -> dict:
    """The same curves as a Plotly figure (data and layout); hover shows the layer, score and interval."""
    data = []
    for text, colour, part, faint in _curves(table):
        x, names = part["depth"].tolist(), part["layer"].tolist()
        lo, hi = [num(v) for v in part["ci_low"]], [num(v) for v in part["ci_high"]]
        if all(v is not None for v in lo + hi):
            band = {"type": "scatter", "x": x + x[::-1], "y": hi + lo[::-1], "fill": "toself"}
            data.append({**band, "fillcolor": rgba(colour, 0.12), "line": {"width": 0}, "hoverinfo": "skip"})
            data[-1]["showlegend"] = False
        line = {"color": colour, "dash": "dot" if faint else "solid"}
        hover = "%{text}: %{y:.3f}<extra>" + text + "</extra>"
        y = [num(v) for v in part["macro_f1"]]
        data.append({"type": "scatter", "mode": "lines+markers", "name": text, "x": x, "y": y, "text": names})
        data[-1].update(line=line, hovertemplate=hover)
    first = float(table.loc[table["decoder"].astype(bool), "depth"].min()) - 0.5
    ticks = table.drop_duplicates("depth").sort_values("depth")
    shapes = [
        {"type": "line", "x0": first, "x1": first, "y0": 0, "y1": 1, "line": {"dash": "dot", "width": 1}},
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": chance, "y1": chance, "line": {"color": "grey"}},
    ]
    xaxis = {"title": "depth: encoder layers, then decoder layers", "tickvals": ticks["depth"].tolist()}
    xaxis["ticktext"] = ticks["layer"].tolist()
    yaxis = {"title": "Macro-F1 (95% interval)", "range": [0, 1]}
    return {"data": data, "layout": plotly_layout(380, shapes=shapes, xaxis=xaxis, yaxis=yaxis)}
