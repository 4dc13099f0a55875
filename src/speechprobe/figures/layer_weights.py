"""The all-layers reference's figure (:mod:`speechprobe.analysis.layer_weights`): the learned weight of each
layer per model, and the weighted sum against the in-fold selected layer; matplotlib is imported when drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import new_figure, random_pairs, save_figure


def plot_layer_weights(
    rows: pd.DataFrame, table: pd.DataFrame, models: list[str], task: str, out_path: Path
) -> Path | None:
    """``out_path`` (``figures/layer_weights_<task>.png``) from the analysis' rows and summary table. Top: the
    learned softmax weight per layer (mean over folds), a line per model, its ``+random`` twin dashed in the
    same colour. Bottom: weighted sum vs the in-fold selected layer per model, with 95 % intervals (the twin
    hatched)."""
    weights = rows[(rows["probe"] == "weighted_sum") & (rows["metric"] == "weight")]
    if weights.empty:
        return None
    shown = random_pairs([m for m in models if m in set(weights["model"])])
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(2.0 + 1.6 * max(len(shown), 2), 6.4)
    top, bottom = fig.subplots(2, 1)
    for i, (model, twin) in enumerate(shown.items()):
        for m, style in ((model, "-"), (twin, "--")):
            part = weights[weights["model"] == m]
            if m is None or part.empty:
                continue
            mean = part.groupby("layer")["value"].mean()
            top.plot(mean.index.astype(int), mean.to_numpy(), ls=style, marker="o", ms=3, color=f"C{i % 10}", label=m)
    top.set_title(f"learned layer weights · {task}", fontsize="small")
    top.set_xlabel("layer")
    top.set_ylabel("learned weight (softmax)")
    top.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.legend(fontsize="x-small")
    _score_bars(bottom, table, shown)
    return save_figure(fig, out_path)


def _score_bars(ax, table: pd.DataFrame, shown: dict[str, str | None]) -> None:
    names = [m for pair in shown.items() for m in pair if m]
    part = table.set_index("model").reindex(names)
    x = np.arange(len(names))
    for k, (col, label) in enumerate((("weighted", "weighted sum"), ("selected", "selected layer"))):
        err = np.abs(part[[f"{col}_lo", f"{col}_hi"]].to_numpy(float).T - part[col].to_numpy(float))
        bars = ax.bar(x + (k - 0.5) * 0.38, part[col], 0.38, yerr=err, color=f"C{k}", alpha=0.8, label=label, capsize=2)
        for bar, name in zip(bars, names):
            bar.set_hatch("//" if name.endswith("+random") else None)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize="small")
    ax.set_ylabel("Macro-F1 (95% interval)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="x-small")
