"""Zero-shot against probing: per (model, task, prompt) the zero-shot score and the best probe score it is
compared with (:func:`zeroshot_points`, also a report table), drawn as a scatter (PNG and SVG)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import METRIC_LABELS, new_figure, save_figure

PROBE_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _colours(models: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(models) <= 10 else "tab20"].colors
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


def zeroshot_points(summary: pd.DataFrame, metric: str = "macro_f1", probe: str | None = None) -> pd.DataFrame:
    """One row per zero-shot (model, task, prompt): its score and the best probe score it is compared with
    (the same model's best layer and probe; else the best probe of any model, ``reference = "any model"``);
    with ``probe`` (the primary probe), that probe's best layer only."""
    columns = ["model", "task", "prompt", "zeroshot", "probe_score", "reference"]
    rows = summary[summary["metric"] == metric].dropna(subset=["mean"])
    zs = rows[rows["probe"].str.startswith("zeroshot:")]
    if zs.empty:
        return pd.DataFrame(columns=columns)
    probes = rows[rows["layer"].notna() & ~rows["probe"].str.startswith("zeroshot:")]
    if probe is not None:
        probes = probes[probes["probe"] == probe]
    own = probes.groupby(["model", "task"])["mean"].max()
    anyone = probes.groupby("task")["mean"].max()
    out = []
    for r in zs.itertuples(index=False):
        if (r.model, r.task) in own.index:
            ref, score = "same model", float(own[(r.model, r.task)])
        elif r.task in anyone.index:
            ref, score = "any model", float(anyone[r.task])
        else:
            ref, score = "none", float("nan")
        out.append((r.model, r.task, r.probe.removeprefix("zeroshot:"), float(r.mean), score, ref))
    return pd.DataFrame(out, columns=columns)


def plot_zeroshot_scatter(
    summary: pd.DataFrame, out_path: Path, metric: str = "macro_f1", probe: str | None = None
) -> Path | None:
    """Zero-shot score (y) against the best probe score (x) per (model, task, prompt); None without zero-shot rows."""
    points = zeroshot_points(summary, metric, probe).dropna(subset=["probe_score"])
    if points.empty:
        return None
    fig = new_figure(6.8, 4.8, layout=None)
    ax = fig.subplots()
    tasks = sorted(points["task"].unique())
    models = sorted(points["model"].unique())
    colours = _colours(tasks)
    for k, model in enumerate(models):
        for task in tasks:
            sel = points[(points["model"] == model) & (points["task"] == task)]
            if sel.empty:
                continue
            hollow = (sel["reference"] == "any model").to_numpy()
            for mask, face in ((~hollow, colours[task]), (hollow, "none")):
                if mask.any():
                    ax.scatter(
                        sel["probe_score"][mask],
                        sel["zeroshot"][mask],
                        marker=PROBE_MARKERS[k % len(PROBE_MARKERS)],
                        s=40,
                        facecolors=face,
                        edgecolors=colours[task],
                        label=f"{model} · {task}",
                    )
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="zero-shot = probe")
    lo = float(min(points["probe_score"].min(), points["zeroshot"].min(), 0.0))
    hi = float(max(points["probe_score"].max(), points["zeroshot"].max(), 1.0))
    ax.set_xlim(lo - 0.02, hi + 0.02)
    ax.set_ylim(lo - 0.02, hi + 0.02)
    label = METRIC_LABELS.get(metric, metric)
    ax.set_xlabel(f"best probe {label} (hollow: best of any model)")
    ax.set_ylabel(f"zero-shot {label}")
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(
        unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False
    )
    return save_figure(fig, Path(out_path))
