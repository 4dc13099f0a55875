"""The ``speechprobe`` command line: a thin Typer layer over the Python API.

``app`` (the Typer app, global flags, entry point ``main``), ``options`` (shared options and their
mapping onto configurations), ``run_commands`` (run, zeroshot, extract, probe, demo) and
``view_commands`` (report, reproduce, cache verify, models, tasks); ``output`` prints the tables.
"""

from __future__ import annotations

# isort: off
from . import run_commands, view_commands  # noqa: F401  (register the commands, in this order)
from . import finetune_commands  # noqa: F401  (speechprobe finetune)

# isort: on
from .app import Globals, app, main, split_global_flags
from .lab_commands import ablate, pretrain  # noqa: F401  (the objective lab's commands, after the others)

__all__ = ["Globals", "app", "main", "split_global_flags"]
