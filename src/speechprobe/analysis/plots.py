"""Layer-curve figures: one per task, written atomically as PNG and SVG."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .summary import atomic_write, layer_rows, num_layers

METRIC_LABELS = {"macro_f1": "Macro-F1", "accuracy": "Accuracy", "nmi": "NMI"}
PROBE_STYLES = ["-", "--", "-.", (0, (3, 1, 1, 1, 1, 1))]
PROBE_MARKERS = ["o", "s", "^", "D", "v", "P"]


def task_slug(task: str) -> str:
    """File-name-safe form of a task name (paths and HF ids become underscores)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", task).strip("._") or "task"


def _colours(models: list[str]) -> dict[str, tuple]:
    palette = colormaps["tab10" if len(models) <= 10 else "tab20"].colors
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


def _draw_task(
    ax: Axes,
    rows: pd.DataFrame,
    depth: pd.Series,
    colours: dict[str, tuple],
    probes: list[str],
    relative_depth: bool,
) -> None:
    single = rows["model"].map(depth) == 1
    for (model, probe), curve in rows[~single].groupby(["model", "probe"], sort=True):
        layers = curve["layer"].astype(float).to_numpy()
        x = layers / (depth[model] - 1) if relative_depth else layers
        mean, ci = curve["mean"].to_numpy(float), curve["ci95"].fillna(0).to_numpy(float)
        i = probes.index(probe)
        ax.plot(
            x, mean, color=colours[model], ls=PROBE_STYLES[i % len(PROBE_STYLES)],
            marker=PROBE_MARKERS[i % len(PROBE_MARKERS)], ms=3.5, lw=1.5, label=f"{model} ({probe})",
        )
        ax.fill_between(x, mean - ci, mean + ci, color=colours[model], alpha=0.15, lw=0)
    baselines = rows[single].sort_values(["model", "mean", "probe"], ascending=[True, False, True])
    for row in baselines.drop_duplicates("model").itertuples():
        ax.axhline(row.mean, color=colours[row.model], lw=1.6, label=f"{row.model} ({row.probe})")


def _save(fig: Figure, path: Path, fmt: str) -> None:
    meta = {"Date": None} if fmt == "svg" else None
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120, bbox_inches="tight", metadata=meta))


def plot_layer_curves(
    summary: pd.DataFrame,
    out_dir: Path,
    chance: dict[str, float] | None = None,
    metric: str = "macro_f1",
    relative_depth: bool = False,
) -> list[Path]:
    """Write ``layers_<task>.png`` (and ``.svg``) per task into ``out_dir``; return the PNG paths.

    One line with a shaded 95% CI per multi-layer (model, probe); each single-layer model
    (hand-crafted baseline) as a solid horizontal line at its best probe; ``chance[task]``,
    when given, as a dotted line. Zero-shot rows (no layer) are ignored.
    """
    out_dir = Path(out_dir)
    rows = layer_rows(summary, metric).dropna(subset=["mean"])
    depth = num_layers(summary)
    models = sorted(rows["model"].unique(), key=lambda m: (depth[m] == 1, m))
    colours, probes = _colours(models), sorted(rows["probe"].unique())
    label = METRIC_LABELS.get(metric, metric)
    paths = []
    for task, task_rows in rows.groupby("task", sort=True):
        fig = Figure(figsize=(7.5, 4.2))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        _draw_task(ax, task_rows, depth, colours, probes, relative_depth)
        if chance and task in chance:
            ax.axhline(chance[task], color="black", ls=":", lw=1.2, label="chance")
        ax.set_title(str(task))
        ax.set_ylabel(label)
        if relative_depth:
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("relative depth (layer / last layer)")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        png = out_dir / f"layers_{task_slug(str(task))}.png"
        _save(fig, png, "png")
        _save(fig, png.with_suffix(".svg"), "svg")
        paths.append(png)
    return paths
