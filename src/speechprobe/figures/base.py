"""What every figure shares: colours, how a model is drawn, the static figure and its files, Plotly defaults.

A ``+random`` control (``--models m,m+random``) is drawn in its trained twin's colour, dashed, with hollow
markers. matplotlib is imported only when a static figure is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..files import atomic_write
from ..models.base import RANDOM_SUFFIX

if TYPE_CHECKING:
    import pandas as pd

# matplotlib's tab10, so a model has the same colour in the static and the interactive figures
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
METRIC_LABELS = {"macro_f1": "Macro-F1", "accuracy": "Accuracy", "nmi": "NMI"}
RELATIVE_DEPTH = "relative depth (0 = input embedding, 1 = last layer)"
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", "size": 12}


def is_random(model: str) -> bool:
    """Whether ``model`` is a random-init control (named ``<model>+random``)."""
    return str(model).endswith(RANDOM_SUFFIX)


def trained_name(model: str) -> str:
    """The trained model a random-init control copies (``model`` itself for a trained model)."""
    return str(model).removesuffix(RANDOM_SUFFIX)


def twin_order(models: Iterable[str]) -> list[str]:
    """``models`` once each, in drawing order: by trained name, each trained model before its ``+random`` twin."""
    return sorted(set(models), key=lambda m: (trained_name(m), is_random(m)))


@dataclass(frozen=True)
class Style:
    """How one model is drawn: its architecture's colour; random-init dashed with hollow markers."""

    colour: tuple
    random: bool

    @property
    def ls(self) -> str:
        return "--" if self.random else "-"

    @property
    def face(self) -> tuple | str:
        return "white" if self.random else self.colour

    @property
    def alpha(self) -> float:
        return 0.8 if self.random else 1.0


def model_styles(models: Iterable[str]) -> dict[str, Style]:
    """One :class:`Style` per model; a random-init model shares its trained twin's colour."""
    from matplotlib import colormaps

    models = list(dict.fromkeys(str(m) for m in models))
    bases = list(dict.fromkeys(trained_name(m) for m in models))
    palette = colormaps["tab10" if len(bases) <= 10 else "tab20"].colors
    colour = {b: palette[i % len(palette)] for i, b in enumerate(bases)}
    return {m: Style(colour[trained_name(m)], is_random(m)) for m in models}


def task_panels(rows: pd.DataFrame, width: float, panels: int) -> tuple[str, list[str], dict[str, Style], Any, Any]:
    """For a one-task figure of ``panels`` side by side: the task of ``rows``, its models in twin order, their
    styles, the figure and its axes."""
    models = twin_order(rows["model"])
    fig = new_figure(width, 3.6)
    return str(rows["task"].iloc[0]), models, model_styles(models), fig, fig.subplots(1, panels)


def random_pairs(models: Iterable[str]) -> dict[str, str | None]:
    """Each model to show -> its ``+random`` twin when the run has it (else None), in the given order.

    For figures that place a twin beside its trained model (a panel or bar next to it); a random model
    without its trained twin is shown on its own (mapped to None).
    """
    models = list(dict.fromkeys(str(m) for m in models))
    names = set(models)
    out: dict[str, str | None] = {}
    for m in models:
        if is_random(m) and trained_name(m) in names:
            continue
        out[m] = m + RANDOM_SUFFIX if m + RANDOM_SUFFIX in names else None
    return out


def contrast_note(models: Iterable[str]) -> str:
    """A caption sentence on how random-init models are drawn ('' when the run has none)."""
    models = list(models)
    if not any(is_random(m) for m in models):
        return ""
    paired = sorted({trained_name(m) for m in models if is_random(m) and trained_name(m) in models})
    lone = sorted(m for m in models if is_random(m) and trained_name(m) not in models)
    text = "Random-init controls (+random: same architecture, random weights) are dashed with hollow markers"
    if paired:
        text += f", in the colour of their trained model ({', '.join(paired)})"
    if lone:
        text += f"; {', '.join(lone)} ha{'s' if len(lone) == 1 else 've'} no trained twin in this run"
    return text + "."


def colours(models: Sequence[str]) -> dict[str, str]:
    """A colour per model (hex, for Plotly), in the given order."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def new_figure(width: float, height: float, layout: str | None = "constrained", dpi: float = 100):
    """A matplotlib figure with its own Agg canvas (no pyplot state, safe in threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, png: Path) -> Path:
    """Write ``fig`` as ``png`` and as the ``.svg`` beside it (both atomically); return ``png``."""
    from ..drawing import figure_bytes

    png = Path(png)
    for path, fmt in ((png, "png"), (png.with_suffix(".svg"), "svg")):
        meta = {"Date": None} if fmt == "svg" else None
        atomic_write(path, figure_bytes(fig, fmt, dpi=120, bbox_inches="tight", metadata=meta))
    return png


PLOTLY_SUFFIX = ".plotly.json"  # an interactive twin beside a static figure, which the report draws instead


def save_plotly(spec: dict | None, png: Path) -> Path | None:
    """Write ``spec`` (a Plotly figure: data and layout) beside ``png`` as its interactive twin, atomically;
    the report draws it instead of the PNG (``report/figures.py``). Nothing for None."""
    if spec is None:
        return None
    data = json.dumps(spec, default=float, allow_nan=False, separators=(",", ":")).encode()
    return atomic_write(Path(png).with_suffix(PLOTLY_SUFFIX), lambda fh: fh.write(data))


def num(v) -> float | None:
    """A finite float for JSON, else None (JSON has no NaN)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def fmt(v, digits: int = 3, signed: bool = False) -> str:
    """``v`` with ``digits`` decimals (``+`` when ``signed``), "–" when it is no finite number."""
    f = num(v)
    if f is None:
        return "–"
    return f"{f:+.{digits}f}" if signed else f"{f:.{digits}f}"


def rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def plotly_layout(height: int, **kw) -> dict:
    """A Plotly layout with the report's font, white background and margins; ``kw`` overrides."""
    return {
        "height": height,
        "font": FONT,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "hoverlabel": {"align": "left"},
        **kw,
    }
