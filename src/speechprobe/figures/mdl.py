"""The MDL figure (:mod:`speechprobe.analysis.mdl`) of one task: probe Macro-F1 and MDL compression side by
side on relative depth, so "easy to extract" (high compression) can be told from "a probe got there" (high
Macro-F1 with little compression); random-init models beside their trained twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import contrast_note, save_figure, task_panels


def _curve(ax, x: np.ndarray, y: np.ndarray, band: np.ndarray | None, style, label: str) -> None:
    if len(x) == 1:  # a hand-crafted baseline: one value, drawn across the depth axis
        ax.axhline(y[0], color=style.colour, ls=":", lw=1.6, label=label)
        return
    ax.plot(x, y, color=style.colour, ls=style.ls, marker="o", mfc=style.face, ms=4, alpha=style.alpha, label=label)
    if band is not None and np.isfinite(band).any():
        ax.fill_between(x, y - band, y + band, color=style.colour, alpha=0.12, lw=0)


def plot_mdl(table: pd.DataFrame, scores: pd.DataFrame, probe: str | None, out_path: Path) -> tuple[Path, str] | None:
    """``mdl_<task>.png`` for the one task of ``table``: Macro-F1 (left) and compression (right) on
    relative depth, and its caption; None when empty."""
    if table.empty:
        return None
    task, models, styles, fig, (left, right) = task_panels(table, 11.0, 2)
    for model in models:
        curve = table[table["model"] == model].sort_values("layer")
        acc = scores[scores["model"] == model].sort_values("layer")
        if not acc.empty:
            depth = acc["layer"].to_numpy(float) / max(len(acc) - 1, 1)
            _curve(left, depth, acc["mean"].to_numpy(float), None, styles[model], model)
        x, band = curve["relative_depth"].to_numpy(float), curve["compression_std"].to_numpy(float)
        _curve(right, x, curve["compression"].to_numpy(float), band, styles[model], model)
    right.axhline(1.0, color="black", lw=0.8, ls="--")
    left.set_ylabel(f"Macro-F1 ({probe})")
    right.set_ylabel("compression (uniform / online)")
    for ax in (left, right):
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.set_xlabel("relative depth (0 = input embedding, 1 = last layer)")
    fig.suptitle(task)
    right.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    n_orders = int(table["n_orders"].max())
    caption = (
        f"MDL probes beside accuracy on {task}: left, Macro-F1 of the {probe} probe per layer; right, the "
        "compression of the online code (uniform code length / online code length; dashed line: 1, no "
        f"compression), mean over {n_orders} block orders with ± one standard deviation shaded. A layer with high "
        "Macro-F1 but little compression holds the labels only for a probe with plenty of data; dotted lines: "
        "hand-crafted baselines."
    )
    note = contrast_note(models)
    return save_figure(fig, Path(out_path)), caption + (" " + note if note else "")
