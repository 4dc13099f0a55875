"""Trained against random-init: pairing, styles and run facts shared by the layer analyses.

Random-init models are named ``<model>+random`` (``--random-init`` randomises every model of a run;
``--models whisper-base,whisper-base+random`` puts the control beside its trained twin). Every figure of
the layer analyses (similarity, MDL, depth fingerprints) draws a random-init model in its trained
twin's colour, dashed and with hollow markers, so architecture-only effects are visible beside the
trained model whenever both are in the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..models.base import RANDOM_SUFFIX


def is_random(model: str) -> bool:
    """Whether ``model`` is a random-init control (named ``<model>+random``)."""
    return str(model).endswith(RANDOM_SUFFIX)


def trained_name(model: str) -> str:
    """The trained model a random-init control copies (``model`` itself for a trained model)."""
    return str(model).removesuffix(RANDOM_SUFFIX)


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


def model_styles(models: Iterable[str]) -> dict[str, Style]:
    """One :class:`Style` per model; a random-init model shares its trained twin's colour."""
    models = list(dict.fromkeys(str(m) for m in models))
    bases = list(dict.fromkeys(trained_name(m) for m in models))
    palette = colormaps["tab10" if len(bases) <= 10 else "tab20"].colors
    colour = {b: palette[i % len(palette)] for i, b in enumerate(bases)}
    return {m: Style(colour[trained_name(m)], is_random(m)) for m in models}


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


def run_seed(manifest: dict, seed: int | None = None) -> int:
    """``seed`` when given, else the run's seed from manifest.json (0 when it has none)."""
    return int((manifest.get("config") or {}).get("seed", 0) if seed is None else seed)


def run_depths(manifest: dict) -> dict[str, int]:
    """Number of layers per model from manifest.json's ``models`` (models without one are left out)."""
    out = {}
    for model, info in (manifest.get("models") or {}).items():
        try:
            out[str(model)] = int((info or {}).get("num_layers"))
        except (TypeError, ValueError):
            continue
    return out


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure with its own Agg canvas (no pyplot state, safe in threads)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig
