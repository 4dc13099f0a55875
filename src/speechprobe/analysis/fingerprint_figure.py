"""The depth-fingerprint figure (:mod:`.fingerprints`): every model and task (and cue) on relative
depth, so models with 5, 13 or 33 layers compare directly; random-init models beside their twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .contrast import contrast_note, is_random, model_styles, new_figure, trained_name
from .plots import save_figure


def _entries(table: pd.DataFrame, probe: str | None) -> list[tuple[str, pd.DataFrame]]:
    """(row label, its rows): each task at the primary probe, then each cue."""
    tasks = table[(table["probe"] == probe) & (table["metric"] == "macro_f1")]
    cues = table[table["metric"] == "r2"]
    out = [(str(t), rows) for t, rows in tasks.groupby("task", sort=True)]
    name = cues["target"].where(cues["target"] != "", cues["task"])
    out += [(f"cue: {c}", rows) for c, rows in cues.groupby(name, sort=True)]
    return out


def _draw_point(ax, y: float, r, colour, ls: str, face) -> None:
    """The 90 % point (bar) and the peak (circle), their intervals, and a line between them."""
    if r.d90_layer >= 0:
        ax.plot([r.d90_depth, r.peak_depth], [y, y], color=colour, ls=ls, lw=1.4)
        ax.plot([r.d90_depth_lo, r.d90_depth_hi], [y + 0.09, y + 0.09], color=colour, lw=1.0, alpha=0.6)
        ax.plot(r.d90_depth, y, marker="|", ms=14, mew=2.5, color=colour, ls="none")
    ax.plot([r.peak_depth_lo, r.peak_depth_hi], [y - 0.09, y - 0.09], color=colour, lw=1.0, alpha=0.6)
    ax.plot(r.peak_depth, y, marker="o", ms=7, color=colour, mfc=face, ls="none")


def plot_fingerprints(table: pd.DataFrame, probe: str | None, out_path: Path) -> tuple[Path, str] | None:
    """``fingerprints.png`` and its caption; None when there is no multi-layer curve."""
    entries = _entries(table, probe)
    if not entries:
        return None
    models = sorted(set(table["model"]), key=lambda m: (trained_name(m), is_random(m)))
    styles = model_styles(models)
    step = 1.0 / (len(models) + 1)
    fig = new_figure(9.5, 1.2 + 0.32 * len(entries) * len(models) + 0.3 * len(entries))
    ax = fig.subplots()
    ticks = []
    for i, (label, rows) in enumerate(entries):
        base = -float(i)
        ticks.append((base - 0.5, label))
        for j, model in enumerate(models):
            sel = rows[rows["model"] == model]
            if sel.empty:
                continue
            st = styles[model]
            _draw_point(ax, base - step * (j + 1), sel.iloc[0], st.colour, st.ls, st.face)
        if i:
            ax.axhline(base, color="#cccccc", lw=0.8)
    ax.set_yticks([t for t, _ in ticks], [lab for _, lab in ticks])
    ax.set_ylim(-len(entries), 0)
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("relative depth (0 = input embedding, 1 = last layer)")
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color=styles[m].colour, ls=styles[m].ls, label=m) for m in models]
    handles += [
        Line2D([], [], color="black", marker="|", ms=10, mew=2.5, ls="none", label="90 % of the rise above chance"),
        Line2D([], [], color="black", marker="o", ls="none", label="peak"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    n_folds = int(np.nanmax(table["n_folds"])) if len(table) else 0
    cues = " and acoustic cue (ridge R²; chance is 0)" if (table["metric"] == "r2").any() else ""
    caption = (
        f"Depth fingerprints: for each task (probe {probe}, Macro-F1){cues}, each model's first layer reaching "
        "90 % of its score's rise above chance (vertical bar) and its peak layer (circle), on relative depth so "
        "that models with different numbers of layers compare directly. Thin bars above and below: 95 % "
        f"intervals from a bootstrap over the {n_folds} folds."
    )
    note = contrast_note(models)
    return save_figure(fig, Path(out_path)), caption + (" " + note if note else "")
