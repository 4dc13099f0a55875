"""The pooling-variants figure (:mod:`speechprobe.analysis.pooling_variants`) of one (model, task): Macro-F1
per layer under each pooling (mean, first, last, edges, max) with 95 % intervals, and each variant's gap to
the mean with its interval. One spec (:func:`variant_spec`) and two renderers: :func:`draw` (the PNG and SVG)
and :func:`plotly` (an interactive figure with the values on hover)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .base import colours, new_figure, num, plotly_layout, rgba, save_figure

ORDER = ("mean", "first", "last", "edges", "max")


@dataclass
class VariantSpec:
    """One (model, task) at one probe: the summary rows (``variant, layer, score*, delta*``) and labels."""

    rows: pd.DataFrame
    model: str
    task: str
    probe: str
    k: int

    def variants(self) -> list[str]:
        return [v for v in ORDER if v in set(self.rows["variant"])]


def variant_spec(table: pd.DataFrame, probe: str) -> VariantSpec | None:
    """The rows of ``probe`` (else the table's first probe) of a one-(model, task) summary; None when empty."""
    if table.empty:
        return None
    probe = probe if (table["probe"] == probe).any() else str(table["probe"].iloc[0])
    rows = table[table["probe"] == probe].sort_values(["variant", "layer"])
    first = rows.iloc[0]
    return VariantSpec(rows, str(first["model"]), str(first["task"]), probe, int(first["edge_frames"]))


def draw(spec: VariantSpec, out_path: Path) -> Path:
    """Top: Macro-F1 per layer and pooling with 95 % bands; bottom: each variant's gap to the mean."""
    from matplotlib.ticker import MaxNLocator

    palette = colours(list(ORDER))
    fig = new_figure(8.0, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for variant in spec.variants():
        part = spec.rows[spec.rows["variant"] == variant]
        x, colour = part["layer"].to_numpy(float), palette[variant]
        ls = "-" if variant == "mean" else "--"
        top.plot(x, part["score"], color=colour, ls=ls, marker="o", ms=3.5, label=variant)
        top.fill_between(x, part["score_lo"], part["score_hi"], color=colour, alpha=0.12, lw=0)
        if variant != "mean":
            bottom.plot(x, part["delta"], color=colour, ls=ls, marker="o", ms=3.5, label=variant)
            bottom.fill_between(x, part["delta_lo"], part["delta_hi"], color=colour, alpha=0.12, lw=0)
    bottom.axhline(0.0, color="black", lw=0.8)
    top.set_ylabel(f"Macro-F1 ({spec.probe})")
    bottom.set_ylabel("gap to the mean")
    bottom.set_xlabel("layer")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.suptitle(f"{spec.model} × {spec.task}")
    return save_figure(fig, Path(out_path))


def caption(spec: VariantSpec) -> str:
    return (
        f"Pooling variants of {spec.model} on {spec.task} (probe {spec.probe}): top, Macro-F1 per layer when each "
        f"layer is pooled as the mean over real frames, the mean of the first or last {spec.k} real frames, both "
        "side by side (edges), or the max over real frames, from the same forward pass; bottom, each variant's gap "
        "to the mean, paired by fold. Bands: 95% intervals over the run's folds (corrected resampled t); the gaps "
        "are not adjusted for the many layers shown (the findings' largest gap is)."
    )


def plot_pooling_variants(table: pd.DataFrame, probe: str, out_path: Path) -> tuple[Path, str] | None:
    """The static figure and its caption; None when the table is empty."""
    spec = variant_spec(table, probe)
    return None if spec is None else (draw(spec, out_path), caption(spec))


def plotly(spec: VariantSpec) -> dict:
    """The interactive figure: the Macro-F1 curves (gaps in the hover) with their bands."""
    palette = colours(list(ORDER))
    traces = []
    for variant in spec.variants():
        part = spec.rows[spec.rows["variant"] == variant]
        x = part["layer"].astype(int).tolist()
        lo, hi = part["score_lo"].map(num).tolist(), part["score_hi"].map(num).tolist()
        colour = palette[variant]
        traces.append(
            {
                "x": x + x[::-1],
                "y": hi + lo[::-1],
                "fill": "toself",
                "fillcolor": rgba(colour, 0.12),
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
                "legendgroup": variant,
                "type": "scatter",
            }
        )
        gaps = [
            "" if variant == "mean" or not np.isfinite(d) else f"<br>gap to the mean {d:+.3f} [{a:+.3f}, {b:+.3f}]"
            for d, a, b in zip(part["delta"], part["delta_lo"], part["delta_hi"])
        ]
        text = [
            f"{variant}, layer {layer}: {s:.3f} [{a:.3f}, {b:.3f}]{g}"
            for layer, s, a, b, g in zip(x, part["score"], part["score_lo"], part["score_hi"], gaps)
        ]
        traces.append(
            {
                "x": x,
                "y": part["score"].map(num).tolist(),
                "name": variant,
                "legendgroup": variant,
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"color": colour, "dash": "solid" if variant == "mean" else "dash"},
                "text": text,
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    layout = plotly_layout(
        380,
        title={"text": f"{spec.model} × {spec.task}"},
        xaxis={"title": {"text": "layer"}, "gridcolor": "#eeeeee"},
        yaxis={"title": {"text": f"Macro-F1 ({spec.probe})"}, "gridcolor": "#eeeeee"},
    )
    return {"data": traces, "layout": layout}
