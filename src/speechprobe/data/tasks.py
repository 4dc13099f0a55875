"""The Task contract and the registration call; ``data.registry`` loads the built-in tasks and looks them up."""

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

    Dataset sources (HF datasets, local copies) also use the column fields: ``audio_column`` and
    ``label_column`` are required; ``id_column`` and ``instruction_column`` are used when present;
    ``group_column`` names a speaker/session column, or ``group_pattern`` (a regular expression)
    extracts one from the id column (its first capture group, else the whole match) where the
    dataset has no such column. ``split`` is the split to read (None: the only split, or ``test``).
    ``group_caveat`` says where the groups do not hold speakers out (e.g. dialogues whose speakers recur
    across dialogues); the report repeats it.
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
    id_column: str | None = "file"
    instruction_column: str | None = "instruction"
    group_pattern: str | None = None
    split: str | None = None
    group_caveat: str = ""


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task to the registry (re-registering the same name replaces it)."""
    _REGISTRY[task.name] = task
    return task


def registered() -> dict[str, Task]:
    """The tasks registered so far (``data.registry.registered_tasks`` loads the built-in ones first)."""
    return dict(_REGISTRY)


def close_matches(name: str, known: list[str]) -> str:
    """A hint naming close matches of ``name`` among ``known``, or all of them."""
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if near:
        return f"did you mean {', '.join(near)}?"
    return f"known: {', '.join(sorted(known))}"
