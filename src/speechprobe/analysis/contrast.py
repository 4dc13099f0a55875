"""Trained against random-init: run facts shared by the layer analyses (how twins are paired and drawn:
:mod:`speechprobe.figures.base`).

Random-init models are named ``<model>+random`` (``--random-init`` randomises every model of a run;
``--models whisper-base,whisper-base+random`` puts the control beside its trained twin). Every figure of
the layer analyses (similarity, MDL, depth fingerprints) draws a random-init model in its trained
twin's colour, dashed and with hollow markers, so architecture-only effects are visible beside the
trained model whenever both are in the run.
"""

from __future__ import annotations

from ..figures.base import is_random as is_random  # re-exported: the layer analyses ask here
from ..figures.base import trained_name as trained_name


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
