"""The task registry: the built-in tasks (the synthetic suite, Dynamic-SUPERB) and any registered since.

Task modules register their tasks with ``tasks.register`` when imported. This module imports the
built-in ones, so ``tasks.py`` (which they import) never imports them back: no import cycle.
"""

from __future__ import annotations

from .tasks import Task, registered


def registered_tasks() -> dict[str, Task]:
    """All registered tasks by name (the synthetic suite and Dynamic-SUPERB entries)."""
    # synthetic first, so `speechprobe tasks` lists the offline suite before the hub tasks
    from .synthetic import suite  # noqa: F401, I001  (registers the synthetic tasks)
    from . import dynamic_superb  # noqa: F401  (registers the Dynamic-SUPERB tasks)

    return registered()
