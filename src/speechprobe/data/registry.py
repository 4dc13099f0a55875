"""The task registry: the built-in tasks (the synthetic suite, Dynamic-SUPERB) and any registered since.

Task modules register their tasks with ``tasks.register`` when imported. This module imports the
built-in ones, so ``tasks.py`` (which they import) never imports them back: no import cycle. Installed
packages add tasks through an entry point in the ``speechprobe.tasks`` group (a ``Task`` or a list).
"""

from __future__ import annotations

from ..plugins import declared
from .tasks import Task, register, registered

ENTRY_POINT_GROUP = "speechprobe.tasks"
_plugins_loaded = False


def registered_tasks() -> dict[str, Task]:
    """All registered tasks by name (the synthetic suite, Dynamic-SUPERB entries, then installed plugins)."""
    global _plugins_loaded
    # synthetic first, so `speechprobe tasks` lists the offline suite before the hub tasks
    from .synthetic import suite  # noqa: F401, I001  (registers the synthetic tasks)
    from . import dynamic_superb  # noqa: F401  (registers the Dynamic-SUPERB tasks)

    if not _plugins_loaded:
        for task in declared(ENTRY_POINT_GROUP, "task", Task):
            register(task)
        _plugins_loaded = True
    return registered()
