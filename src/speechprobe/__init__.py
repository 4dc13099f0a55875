"""speechprobe: what does each layer of a speech foundation model know about how something is said.

Notebook use::

    import speechprobe
    results = speechprobe.run(models=["whisper-tiny.en"], tasks=["accent"], out="RUN")

``speechprobe.run`` takes every ``RunConfig`` setting as a keyword (by its flat name) and returns the tidy results
(a pandas DataFrame with columns model, task, layer, probe, fold, metric, value).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from .config import RunConfig


def run(
    models: Sequence[str], tasks: Sequence[str], out: str | Path, existing: str = "auto", **options
) -> pd.DataFrame:
    """Extract, probe and report; ``options`` are ``RunConfig`` settings (probes, folds, seed, knn_k, ...).

    ``existing``: ``auto`` resumes a run of the same settings in ``out`` and refuses another, ``resume``
    also adopts files of a run of unknown settings, ``overwrite`` replaces it."""
    from .config import RunConfig
    from .pipeline import run as run_pipeline

    return run_pipeline(RunConfig.of(models=list(models), tasks=list(tasks), out=Path(out), **options), existing)


def __getattr__(name: str):
    """Lazy access to the main types, so importing the package stays cheap."""
    if name == "RunConfig":
        from .config import RunConfig

        return RunConfig
    raise AttributeError(f"module 'speechprobe' has no attribute {name!r}")


__all__ = ["RunConfig", "__version__", "run"]
