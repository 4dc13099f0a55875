"""Readable class names: the task datasheet's display map (``en-029`` -> "Caribbean English").

A registered task may map each label to the name a reader expects (``Task.display_names``); a run can
also record the map in manifest.json (``tasks[t].display_names``), which wins, so a report rendered on
another machine or version says the same. A label without a display name is shown as itself. Figures
and tables show the display name; files keep the label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def display_map(task: str, info: Mapping | None = None) -> dict[str, str]:
    """label -> display name for ``task``: manifest.json's ``display_names`` (``info`` is the task's
    manifest entry), else the registered task's datasheet, else empty."""
    recorded = (info or {}).get("display_names")
    if isinstance(recorded, Mapping) and recorded:
        return {str(k): str(v) for k, v in recorded.items()}
    from ..data.registry import registered_tasks

    known = registered_tasks().get(task)
    names = getattr(known, "display_names", None) or {}
    return {str(k): str(v) for k, v in names.items()}


def display_labels(labels: Iterable, names: Mapping[str, str]) -> list[str]:
    """Each label's display name (the label itself when it has none)."""
    return [names.get(str(label), str(label)) for label in labels]


__all__ = ["display_labels", "display_map"]
