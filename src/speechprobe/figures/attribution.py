"""The attribution figures (:mod:`speechprobe.analysis.attribution`): the share of attribution per named region
and depth (one heat map panel per model), and a few example clips' attribution over their spectrogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import is_random, new_figure, num, plotly_layout, save_figure, twin_order
from .mixing import sampled

REGION_LABELS = {
    "f0_band": "F0 band < 300 Hz",
    "formant_band": "formants 300-3000 Hz",
    "high_band": "high > 3000 Hz",
    "onset": "onset",
    "nucleus": "nucleus",
    "offset": "offset",
    "silence": "silence",
}


def plot_shares(table: pd.DataFrame, out_path: Path) -> tuple[Path, str] | None:
    """``attribution_<task>.png``: per model, the mean share of each region (rows) at each analysed layer
    (columns), the best layer marked; and its caption. None when empty."""
    rows = table[table["class"].astype(str) == "all"]
    if rows.empty:
        return None
    task = str(rows["task"].iloc[0])
    models = twin_order(rows["model"])
    regions = [r for r in REGION_LABELS if r in set(rows["region"])]
    fig = new_figure(3.2 * len(models) + 1.6, 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(models)))
    for ax, model in zip(axes, models):
        part = rows[rows["model"] == model]
        grid = part.pivot_table(index="region", columns="layer", values="mean").reindex(index=regions)
        image = ax.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid.to_numpy(float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
        best = int(part["best_layer"].iloc[0])
        ax.set_xticks(range(grid.shape[1]), [f"{c}*" if c == best else str(c) for c in grid.columns])
        ax.set_yticks(range(len(regions)), [REGION_LABELS[r] for r in regions] if ax is axes[0] else [])
        ax.axhline(2.5, color="white", lw=1.5)
        ax.set_title(model, fontsize="small")
        ax.set_xlabel("layer (* best)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="share of the net attribution")
    n, steps = sampled(rows), int(rows["steps"].max())
    caption = (
        f"Where the decision of each layer's linear head on {task} lies: the share of the integrated-gradients "
        "attribution (on the model's own input, log-mel or stacked fbanks, or for a model reading the waveform "
        f"the clip's STFT magnitudes; from the sample's mean input at each frame, {steps} steps; "
        "each region's net sum, in absolute value, over its group's) in each frequency band "
        "(top three rows, summing to 1) and each time region of an energy VAD (bottom four, summing to 1), mean "
        f"over {n}; * marks the primary probe's best layer."
    )
    if any(is_random(m) for m in models):
        caption += " A +random panel is its model's random-init control (same architecture, random weights)."
    return save_figure(fig, Path(out_path)), caption


def plot_examples(examples: list, model: str, task: str, out_path: Path) -> tuple[Path, str] | None:
    """``attribution_examples_<model>_<task>.png``: per example clip (layer, label, input, attribution, bin centres
    in Hz, frame hop in s) its input grid (log-mel, fbanks or log STFT magnitude) with the attribution's magnitude
    over it; and its caption. None without examples."""
    if not examples:
        return None
    fig = new_figure(4.0 * len(examples), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(examples)))
    for ax, (layer, label, image, attr, hz, frame_s) in zip(axes, examples):
        times, edges = np.arange(image.shape[1] + 1) * frame_s, _edges(np.asarray(hz, dtype=float))
        ax.pcolormesh(times, edges, image, cmap="gray_r", shading="flat", rasterized=True)
        heat = np.abs(attr) / max(float(np.abs(attr).max()), 1e-12)
        ax.pcolormesh(
            times, edges, np.ma.masked_less(heat, 0.05), cmap="magma_r", alpha=0.7, shading="flat", rasterized=True
        )
        for edge in (300, 3000):
            ax.axhline(edge, color="tab:cyan", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_ylim(50, float(hz.max()))
        ticks = [t for t in (100, 300, 1000, 3000, 8000) if t <= hz.max()]
        ax.set_yticks(ticks, [f"{t // 1000}k" if t >= 1000 else str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_title(f"{label} · layer {layer}", fontsize="small")
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz, log scale)")
    fig.suptitle(f"{model} · {task}")
    caption = (
        f"Example clips of {task}: the model's input (grey: log-mel or fbanks; for a waveform model the log "
        f"spectrogram) with the magnitude of {model}'s integrated-gradients "
        "attribution at its best layer over it (colour, normalised per clip, below 5 % hidden) for the clip's own "
        "label, one clip per class; dashed: the 300 Hz and 3 kHz band edges."
    )
    return save_figure(fig, Path(out_path)), caption


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges (Hz, at least 1 for the log axis) around bin centres that never decrease (narrow mel filters
    can share a centre: a cell of zero height)."""
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[max(2 * centres[0] - mid[0], 1.0)], mid, [2 * centres[-1] - mid[-1]]])


def plotly(table: pd.DataFrame) -> dict | None:
    """The interactive share heat map: regions (rows) by model and layer (columns, * the best layer), the share
    and its 95 % interval on hover; None when empty."""
    rows = table[table["class"].astype(str) == "all"]
    if rows.empty:
        return None
    models = twin_order(rows["model"])
    regions = [r for r in REGION_LABELS if r in set(rows["region"])]
    columns, z, hover = [], [[] for _ in regions], [[] for _ in regions]
    for model in models:
        part = rows[rows["model"] == model]
        best = int(part["best_layer"].iloc[0])
        for layer in sorted(part["layer"].unique()):
            columns.append(f"{model} · {layer}{'*' if layer == best else ''}")
            at = part[part["layer"] == layer].set_index("region")
            for i, region in enumerate(regions):
                r = at.loc[region] if region in at.index else None
                z[i].append(num(r["mean"]) if r is not None else None)
                ci = f" [{r['low']:.0%}, {r['high']:.0%}]" if r is not None and np.isfinite(r["low"]) else ""
                hover[i].append(f"{r['mean']:.0%}{ci}, {int(r['n_units'])} {r['unit']}s" if r is not None else "")
    trace = {
        "type": "heatmap",
        "z": z,
        "x": columns,
        "y": [REGION_LABELS[r] for r in regions],
        "zmin": 0,
        "zmax": 1,
        "colorscale": "Viridis",
        "text": hover,
        "hovertemplate": "%{y} · %{x}: %{text}<extra></extra>",
        "colorbar": {"title": {"text": "share"}},
    }
    layout = plotly_layout(60 + 34 * len(regions), yaxis={"autorange": "reversed", "automargin": True})
    return {"data": [trace], "layout": layout}
