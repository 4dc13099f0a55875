"""Trained against random-init: pairing and run facts shared by the layer analyses (how a model is drawn:
:mod:`speechprobe.figures.base`).

Random-init models are named ``<model>+random`` (``--random-init`` randomises every model of a run;
``--models whisper-base,whisper-base+random`` puts the control beside its trained twin). Every figure of
the layer analyses (similarity, MDL, depth fingerprints) draws a random-init model in its trained
twin's colour, dashed and with hollow markers, so architecture-only effects are visible beside the
trained model whenever both are in the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..figures.base import is_random, trained_name
from ..models.base import RANDOM_SUFFIX
from .outputs import FigureNote


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


def run_relative(run_dir: Path, path: Path) -> str:
    """``path`` (inside the run directory) relative to it, as a POSIX string."""
    return Path(path).relative_to(Path(run_dir)).as_posix()


def figure_notes(run_dir: Path, drawn: Iterable[tuple[Path, str] | None], section: str) -> list[FigureNote]:
    """The report's notes for the (png, caption) pairs a figure function returned (None: not drawn)."""
    return [FigureNote(run_relative(run_dir, png), caption, section) for png, caption in filter(None, drawn)]
