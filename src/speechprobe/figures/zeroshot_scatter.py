"""Zero-shot against probing: per (model, task, prompt) the zero-shot score and the best probe score it is
compared with (:func:`zeroshot_points`, also a report table), drawn as a scatter (PNG and SVG); and the
chance-normalised pairs of :mod:`speechprobe.zeroshot.link` with their correlations (:func:`plot_zeroshot_vs_probe`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_write
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


def plot_zeroshot_vs_probe(pairs: pd.DataFrame, corr: pd.DataFrame, out_path: Path) -> Path | None:
    """Scatter of the default chance-normalised zero-shot score (y) against the probe's (x) per (model,
    task); collapsed pairs hollow (left out of the correlation). Pairs whose representation side is a decoder
    curve (selections ``default · <side>``, from the decoder_layers analysis) are drawn as open black markers,
    one shape per side, joined to their encoder point."""
    decoder = pairs[pairs["selection"].astype(str).str.startswith("default · ")]
    pairs = pairs[pairs["selection"] == "default"]
    if pairs.empty:
        return None
    from matplotlib import colormaps

    from ..drawing import figure_bytes  # texts drawn literally: a "$" in a task name is not math

    fig = new_figure(6.4, 5.0, layout=None, dpi=120)
    ax = fig.subplots()
    cmap = colormaps["tab10"]
    for k, model in enumerate(sorted(pairs["model"].unique())):
        sel = pairs[pairs["model"] == model]
        for collapsed, face in ((False, cmap(k % 10)), (True, "none")):
            part = sel[sel["collapsed"].astype(bool) == collapsed]
            label = model if not collapsed else f"{model} (collapsed)"
            if not part.empty:
                ax.scatter(part["probe_norm"], part["zeroshot_norm"], facecolors=face, edgecolors=cmap(k % 10), s=36)
                ax.scatter([], [], facecolors=face, edgecolors=cmap(k % 10), label=label)
        for r in sel.itertuples(index=False):
            ax.annotate(r.task, (r.probe_norm, r.zeroshot_norm), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for marker, (selection, part) in zip("^sDv", decoder.groupby("selection", sort=True)):
        side = str(selection).removeprefix("default · ")
        ax.scatter(part["probe_norm"], part["zeroshot_norm"], marker=marker, facecolors="none", edgecolors="black")
        ax.scatter([], [], marker=marker, facecolors="none", edgecolors="black", label=f"{side} (best decoder layer)")
        enc = pairs.set_index(["model", "task"])["probe_norm"]
        for r in part.itertuples(index=False):
            x0 = enc.get((r.model, r.task), np.nan)
            ax.plot([x0, r.probe_norm], [r.zeroshot_norm] * 2, color="black", lw=0.5, alpha=0.4, zorder=1)
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, zorder=1)
    ax.set_xlabel("best-layer probe Macro-F1, chance-normalised (s − chance) / (1 − chance)")
    ax.set_ylabel("zero-shot Macro-F1, chance-normalised (default mode, mean over prompts)")
    pooled = corr[(corr["scope"] == "pooled") & (corr["selection"] == "default")].set_index("method")

    def fmt(method: str, symbol: str) -> str:
        if method not in pooled.index or not np.isfinite(pooled.loc[method, "r"]):
            return f"{symbol} = n/a"
        r = pooled.loc[method]
        return f"{symbol} = {r['r']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    n_used = int(pooled["n_pairs"].iloc[0]) if len(pooled) else 0
    ax.set_title(
        f"Zero-shot vs probes, {n_used} (model, task) pairs (collapsed excluded)\n"
        f"{fmt('spearman', 'Spearman ρ')}; {fmt('pearson', 'Pearson r')} (95% bootstrap over tasks)",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    fig.tight_layout()
    atomic_write(Path(out_path), figure_bytes(fig, "png"))
    return Path(out_path)
