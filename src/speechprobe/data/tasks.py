"""The Task contract and the registration call; ``data.registry`` loads the built-in tasks and looks them up."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .source import normalise_label

#: Dynamic-SUPERB's task dimensions (its taxonomy; "unspecified" for a user's own data). Only
#: ``paralinguistic`` tasks count as paralinguistic in the report's split.
DIMENSIONS = ("paralinguistic", "semantic", "speaker", "content", "unspecified")


@dataclass(frozen=True)
class Grouping:
    """Where a clip's group (a speaker, a dialogue, a word) comes from.

    ``column`` is the column read (None: the id column, else the audio path); ``pattern`` (a regular
    expression) extracts the group from it: its first capture group, else the whole match; no pattern:
    the whole value. ``optional``: the column may be absent from a copy (then the clips have no group and
    the run says so). ``caveat`` says where these groups do not hold speakers out.
    """

    column: str | None = None
    pattern: str | None = None
    optional: bool = False
    caveat: str = ""

    def describe(self) -> str:
        """One line for people: which column or path part holds the group."""
        where = f"column `{self.column}`" if self.column else "the file name"
        return f"{where}, pattern {self.pattern}" if self.pattern else where


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
    across dialogues); the report repeats it. ``group_name`` says what one group is (speaker, language,
    dialogue, word): the report's and the statistics' unit name (``--group-name`` overrides it).

    ``dimension`` is the task's place in Dynamic-SUPERB's taxonomy (``DIMENSIONS``); ``paralinguistic``
    is derived from it (a bool given in its place, as older callers do, means paralinguistic or
    unspecified). ``groupings`` names the ways the clips can be grouped (``speaker``, ``word``,
    ``dialogue``: kind -> :class:`Grouping`); the first is the default, ``group_by`` the one in use
    ("": none), and ``group_column``/``group_pattern``/``group_caveat`` follow it unless given; a group
    column or pattern given with a grouping applies the pattern to that column. ``revision`` pins a hub
    dataset to a commit (or tag). ``label_semantics`` says what a label means, ``question`` is the short
    question zero-shot prompts ask, ``card`` lists facts taken from the public dataset card and
    ``unverified`` the declarations no card states.

    Datasheet words for people and decoders: ``display_names`` maps a label to the name a reader
    expects (``en-029`` -> "Caribbean English"; default: the label itself); ``verbalisers`` maps a
    label to one or more natural phrasings a text decoder can say ("close", "close, about 40 cm";
    default: the display name). Zero-shot prompts list each label's first phrasing and likelihood
    modes average over all of them (docs/zeroshot.md).
    """

    name: str
    labels: tuple[str, ...]
    dimension: str
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
    display_names: dict[str, str] = field(default_factory=dict)
    verbalisers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    group_caveat: str = ""
    groupings: dict[str, Grouping] = field(default_factory=dict)
    group_by: str | None = None
    revision: str | None = None
    label_semantics: str = ""
    question: str = ""
    card: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    group_name: str = ""  # what a group is (speaker, language, dialogue, word); "" : "group"

    def __post_init__(self) -> None:
        dimension = self.dimension
        if isinstance(dimension, bool):  # the paralinguistic flag of older callers
            dimension = "paralinguistic" if dimension else "unspecified"
        if dimension not in DIMENSIONS:
            raise ValueError(f"task {self.name}: dimension {dimension!r} is not one of {', '.join(DIMENSIONS)}")
        object.__setattr__(self, "dimension", dimension)
        if self.groupings and self.group_by is None:
            object.__setattr__(self, "group_by", next(iter(self.groupings)))
        chosen = self.groupings.get(self.group_by) if self.group_by else None
        if chosen is not None and self.group_column is None and self.group_pattern is None:
            object.__setattr__(self, "group_column", chosen.column)
            object.__setattr__(self, "group_pattern", chosen.pattern)
            object.__setattr__(self, "group_caveat", self.group_caveat or chosen.caveat)
        if self.group_by and not self.group_name:
            object.__setattr__(self, "group_name", self.group_by)

    @property
    def paralinguistic(self) -> bool:
        """Whether the task is paralinguistic in Dynamic-SUPERB's taxonomy (its ``dimension``)."""
        return self.dimension == "paralinguistic"

    def grouped_by(self, kind: str) -> Task:
        """This task with its clips grouped by ``kind`` (one of ``groupings``), or a one-line error."""
        if kind not in self.groupings:
            have = ", ".join(self.groupings) or "none: its clips have no group"
            raise ConfigError(f"--group-by {kind}: task {self.name} has no {kind} grouping (it has {have})")
        g = self.groupings[kind]
        return dataclasses.replace(
            self, group_by=kind, group_column=g.column, group_pattern=g.pattern, group_caveat=g.caveat, group_name=kind
        )

    def group_source(self) -> str:
        """Which grouping is in use and where it comes from (``speaker: the file name, pattern ...``)."""
        if self.group_by and self.group_by in self.groupings:
            return f"{self.group_by}: {self.groupings[self.group_by].describe()}"
        if self.group_column or self.group_pattern:
            return Grouping(self.group_column, self.group_pattern).describe()
        return "none"

    def display(self, label: str) -> str:
        """The label as a reader expects it (the report, prompts): its display name, else the label."""
        return self.display_names.get(label, label)

    def phrasings(self, label: str) -> tuple[str, ...]:
        """Natural phrasings of ``label`` for a text decoder: its verbalisers, else its display name."""
        return tuple(self.verbalisers.get(label) or ()) or (self.display(label),)


VERBALISER_SUFFIX = ".verbalisers.json"


def load_verbalisers(path: str | Path, labels: Sequence[str]) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Display names and verbalisers of ``labels`` from a JSON file (docs/zeroshot.md, Verbalisers).

    The file maps a label to a list of phrasings (the first is also its display name) or to an object
    ``{"display": "...", "phrasings": [...]}``; labels it leaves out keep the label itself. A label not
    in ``labels``, an empty phrasing or one phrasing given to two labels is refused, naming the file.
    """
    path = Path(path).expanduser()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"verbaliser file {path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise ConfigError(f"verbaliser file {path}: not valid JSON ({e})") from None
    if not isinstance(entries, dict):
        raise ConfigError(f'verbaliser file {path}: expected an object of label -> ["phrasing", ...]')
    known = {normalise_label(x): str(x) for x in labels}
    display: dict[str, str] = {}
    phrasings: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for key, value in entries.items():
        label = known.get(normalise_label(str(key)))
        if label is None:
            raise ConfigError(
                f"verbaliser file {path}: label {key!r} is not in the task's label set ({', '.join(map(str, labels))})"
            )
        name, forms = _verbaliser_entry(value, f"verbaliser file {path}, label {key!r}")
        for form in forms:
            other = owner.setdefault(form.casefold(), label)
            if other != label:
                raise ConfigError(f"verbaliser file {path}: {form!r} is given to both {other!r} and {label!r}")
        display[label], phrasings[label] = name or forms[0], forms
    return display, phrasings


def _verbaliser_entry(value, where: str) -> tuple[str | None, tuple[str, ...]]:
    """(display name or None, phrasings) of one verbaliser-file entry."""
    name = None
    if isinstance(value, dict):
        unknown = set(value) - {"display", "phrasings"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use display and phrasings")
        name, value = value.get("display"), value.get("phrasings", [value.get("display")])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of non-empty phrasings")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"{where}: display must be a non-empty string")
    return (name.strip() if name else None), tuple(dict.fromkeys(v.strip() for v in value))


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
