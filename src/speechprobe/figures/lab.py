"""The objective lab's figures (:mod:`speechprobe.lab`): per task, each objective's Macro-F1 per layer (mean over
pre-training seeds with its t interval shaded) and the seed-paired difference to the control; the pretext-loss
curves of every (objective, seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import PALETTE, new_figure, save_figure


def _colours(objectives) -> dict[str, str]:
    return {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(sorted(objectives))}


def depth_spec(objectives: pd.DataFrame, paired: pd.DataFrame, task: str, control: str) -> dict:
    """The per-layer rows of ``task``: objective curves and the differences to ``control``."""
    curves = objectives[(objectives["task"] == task) & (objectives["layer"] != "best")].copy()
    diffs = paired[(paired["task"] == task) & (paired["b"] == control) & (paired["layer"] != "best")].copy()
    for frame in (curves, diffs):
        frame["layer"] = frame["layer"].astype(int)
    return {
        "task": task,
        "control": control,
        "curves": curves.sort_values("layer"),
        "diffs": diffs.sort_values("layer"),
    }


def draw_depth(spec: dict, png: Path) -> Path:
    """Left: Macro-F1 per layer per objective; right: difference to the control per layer (95 % t over seeds)."""
    fig = new_figure(10.0, 3.6)
    left, right = fig.subplots(1, 2)
    colours = _colours(spec["curves"]["objective"].unique())
    for obj, g in spec["curves"].groupby("objective"):
        left.plot(g["layer"], g["mean"], marker="o", color=colours[obj], label=obj)
        left.fill_between(g["layer"], g["low"], g["high"], color=colours[obj], alpha=0.15, lw=0)
    for obj, g in spec["diffs"].groupby("a"):
        right.plot(
            g["layer"], g["diff"], marker="o", color=colours.get(obj, "black"), label=f"{obj} - {spec['control']}"
        )
        right.fill_between(g["layer"], g["low"], g["high"], color=colours.get(obj, "black"), alpha=0.15, lw=0)
    right.axhline(0.0, color="black", lw=0.8, ls="--")
    left.set_ylabel("Macro-F1 (mean over seeds)")
    right.set_ylabel(f"paired difference to {spec['control']}")
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer (0 = input of block 1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", frameon=False)
    fig.suptitle(spec["task"])
    return save_figure(fig, png)


def draw_losses(curves: pd.DataFrame, png: Path) -> Path:
    """Pretext loss per step, one line per (objective, seed); objectives differ in units, so one panel each."""
    objectives = sorted(curves["objective"].unique())
    fig = new_figure(4.0 * max(len(objectives), 1), 3.2)
    axes = np.atleast_1d(fig.subplots(1, max(len(objectives), 1)))
    colours = _colours(objectives)
    for ax, obj in zip(axes, objectives):
        for seed, g in curves[curves["objective"] == obj].groupby("seed"):
            ax.plot(g["step"], g["loss"], color=colours[obj], alpha=0.5 + 0.5 / (1 + seed), lw=1, label=f"seed {seed}")
        ax.set_title(obj)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", frameon=False)
    axes[0].set_ylabel("pretext loss")
    return save_figure(fig, png)
