"""The ladder (:mod:`speechprobe.analysis.ladder`) of one model x task: each rung's Macro-F1 (zero-shot, best
frozen layer, all-layer weighting, attention-pooling head, fine-tuned) with its 95 % interval over folds, chance
as a line, the shuffled-label control beside them. A spec (:func:`ladder_spec`) and two renderers: :func:`draw`
(``figures/ladder_<model>_<task>.png``) and :func:`plotly`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .base import fmt, new_figure, num, plotly_layout, save_figure

RUNG_COLOUR = "#3b6ea8"
CONTROL_COLOUR = "#999999"


@dataclass(frozen=True)
class LadderSpec:
    """The rungs of one model x task, in order (``rung``, ``label``, ``mean``, ``low``, ``high``), and chance."""

    model: str
    task: str
    rungs: pd.DataFrame
    chance: float | None


def ladder_spec(table: pd.DataFrame, model: str, task: str) -> LadderSpec | None:
    """The ladder of ``model`` x ``task`` from ladder.csv's rows; None when it has no rung."""
    rows = table[(table["model"] == model) & (table["task"] == task)].sort_values("order")
    if rows.empty:
        return None
    chance = num(rows["chance"].iloc[0])
    return LadderSpec(model, task, rows.reset_index(drop=True), chance)


def _label(r) -> str:
    label = f"{r.rung}\n({r.source})" if isinstance(r.source, str) and r.source else str(r.rung)
    weight = getattr(r, "top_weight", float("nan"))
    if not (pd.notna(weight) and weight < 1):
        return label
    return f"{label}\nmost: layer {r.top_layer:.0f} ({weight:.2f}; uniform {1 / r.n_read:.2f})"


def draw(spec: LadderSpec, out_path: Path) -> Path:
    """The static ladder: one bar per rung with its interval, chance dashed."""
    rows = spec.rungs
    fig = new_figure(1.6 + 1.3 * len(rows), 3.4)
    ax = fig.subplots()
    for i, r in enumerate(rows.itertuples()):
        colour = CONTROL_COLOUR if r.rung == "shuffled control" else RUNG_COLOUR
        ax.bar(i, r.mean, color=colour, alpha=0.8)
        if pd.notna(r.low) and pd.notna(r.high):
            ax.errorbar(i, r.mean, yerr=[[r.mean - r.low], [r.high - r.mean]], color="black", capsize=4, lw=1)
    if spec.chance is not None:
        ax.axhline(spec.chance, color="black", ls="--", lw=0.8, label=f"chance {spec.chance:.2f}")
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    ax.set_xticks(range(len(rows)), [_label(r) for r in rows.itertuples()], fontsize="small")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Macro-F1")
    ax.set_title(f"{spec.model} × {spec.task}")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, Path(out_path))


def caption(spec: LadderSpec) -> str:
    """What the figure shows."""
    return (
        f"The ladder of {spec.model} on {spec.task}: Macro-F1 of each rung with its 95% interval over the run's "
        "folds (corrected resampled t; zero-shot is one evaluation over all clips, so it has none). Best frozen "
        "layer: the primary probe's best layer in hindsight (optimistic); all-layer weighting: the learned weighted "
        "sum; head: the frozen encoder with a trained attention-pooling head; fine-tuned: the encoder trained on each "
        "training fold; a trained head reads a learned weighting of every layer (most: the layer it weighted most, "
        "mean over folds) unless --ft-layers last. Grey: the shuffled-label control. Dashed: chance."
    )


def _trace(rows: pd.DataFrame, name: str, colours: list[str] | str | None = None) -> dict:
    """One bar per rung of ``rows`` with its interval (hover: mean, interval, step up with its paired interval)."""
    hover = [
        f"{name}<br>{r.rung} ({r.source}): {fmt(r.mean)} [{fmt(r.low)}, {fmt(r.high)}]"
        + (
            f"<br>step up {fmt(r.step, signed=True)} [{fmt(r.step_low)}, {fmt(r.step_high)}]"
            if "step" in rows and pd.notna(r.step)
            else ""
        )
        for r in rows.itertuples()
    ]
    return {
        "type": "bar",
        "x": [str(r) for r in rows["rung"]],
        "y": [num(v) for v in rows["mean"]],
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": [num(h - m) for m, h in zip(rows["mean"], rows["high"])],
            "arrayminus": [num(m - lo) for m, lo in zip(rows["mean"], rows["low"])],
        },
        **({"marker": {"color": colours}} if colours is not None else {}),
        "hovertext": hover,
        "hoverinfo": "text",
        "name": name,
    }


def _layout(title: str, chance: float | None, **extra) -> dict:
    shapes = []
    if chance is not None:
        line = {"color": "black", "dash": "dash", "width": 1}
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": chance, "y1": chance, "line": line})
    yaxis = {"title": {"text": "Macro-F1"}, "range": [0, 1]}
    return plotly_layout(320, yaxis=yaxis, shapes=shapes, title={"text": title}, **extra)


def plotly(spec: LadderSpec) -> dict:
    """The interactive ladder (hover: mean, interval, step up with its paired interval)."""
    colours = [CONTROL_COLOUR if r == "shuffled control" else RUNG_COLOUR for r in spec.rungs["rung"]]
    trace = _trace(spec.rungs, spec.model, colours)
    return {"data": [trace], "layout": _layout(f"{spec.model} × {spec.task}", spec.chance)}


def plotly_runs(table: pd.DataFrame, task: str) -> dict | None:
    """Several runs' ladders on ``task`` side by side (``speechprobe compare``): a group of bars per rung, one bar
    per run × model with its interval; ``table``: ladder.csv rows with a ``run`` column. None without rows."""
    rows = table[table["task"] == task]
    if rows.empty:
        return None
    order = rows.groupby("rung")["order"].min().sort_values(kind="mergesort")
    traces = []
    for (run, model), part in rows.groupby(["run", "model"], sort=False):
        part = part.set_index("rung").reindex(order.index).dropna(subset=["mean"]).reset_index()
        traces.append(_trace(part, f"{run} · {model}"))
    chance = num(rows["chance"].iloc[0]) if "chance" in rows else None
    layout = _layout(f"The ladders on {task}", chance, barmode="group", showlegend=True)
    layout["xaxis"] = {"categoryorder": "array", "categoryarray": list(order.index)}
    return {"data": traces, "layout": layout}
