"""Task contract and registry: lookup by short name; a manifest path or HF id also works."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Task:
    """A labelled probing task.

    ``source`` says where clips come from: ``"synthetic"`` (the built-in eSpeak NG suite),
    an HF dataset id (``"DynamicSuperb/..."``), or a path (manifest CSV / local dataset folder).
    ``cue`` is the datasheet line: which property of the signal carries the label.
    ``label_map`` maps source spellings (normalised) to canonical labels.
    """

    name: str
    labels: tuple[str, ...]
    paralinguistic: bool
    source: str
    cue: str
    group_column: str | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    audio_column: str = "audio"
    label_column: str = "label"


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task to the registry (re-registering the same name replaces it)."""
    _REGISTRY[task.name] = task
    return task


def registered_tasks() -> dict[str, Task]:
    """All registered tasks by name (the synthetic suite and Dynamic-SUPERB entries)."""
    _load_builtin()
    return dict(_REGISTRY)


def close_matches(name: str, known: list[str]) -> str:
    """A hint naming close matches of ``name`` among ``known``, or all of them."""
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if near:
        return f"did you mean {', '.join(near)}?"
    return f"known: {', '.join(sorted(known))}"


def _load_builtin() -> None:
    from .synthetic import suite  # noqa: F401  (registers the synthetic tasks)
