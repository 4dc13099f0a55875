"""The ``speechprobe`` command line: a thin Typer layer over the Python API.

``app`` (the Typer app, global flags, entry point ``main``), ``options`` (shared options and their
mapping onto configurations), ``run_commands`` (run, zeroshot, extract, probe, demo) and
``report_commands`` (report, reproduce, cache verify, models, tasks).
"""

from __future__ import annotations

from . import report_commands, run_commands  # noqa: F401  (registers the commands on the app)
from .app import Globals, app, main, split_global_flags

__all__ = ["Globals", "app", "main", "split_global_flags"]
