"""Turn a ``--tasks`` entry into a Task and a clip source.

An entry is one of:

* a registry name (``emotion``, ``ds-emotion``): synthetic tasks are generated, Dynamic-SUPERB tasks
  are read from the hub (or the HF cache when offline);
* ``NAME=PATH``: a registered task read from a local copy (a ``save_to_disk`` folder or a folder
  of parquet files), keeping the task's label set, label map and grouping;
* a manifest CSV (``path,label[,group]``; the task is named after its folder when the file is
  ``manifest.csv``, else after the file, or ``NAME=path.csv``), with its display names and verbalisers from
  ``<stem>.verbalisers.json`` beside it when there is one;
* a local dataset folder (``save_to_disk`` or parquet files) or an HF hub id (``owner/name``): any
  audio dataset, given its column names (``columns``).

A registry name or hub id may carry a revision (``ds-stress@<commit>``, ``ds-stress@<commit>=DIR``),
which overrides the task's pinned one. ``group_by`` picks one of a task's declared groupings
(``speaker``, ``word``, ``dialogue``); ``label_map`` adds spellings to a task's label map (see
``data/labels.py``, also read from a ``.labelmap.json`` sidecar beside a local copy), and a task whose
labels mostly fall outside its declared set stops here, before any extraction.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError, SpeechprobeError
from .audio import MAX_CLIP_SECONDS
from .labels import check_outside_share, label_map_for, read_label_map
from .labels import sidecar as label_sidecar
from .manifest import ManifestSource
from .registry import registered_tasks
from .revision import split_revision
from .source import ClipSource
from .tasks import VERBALISER_SUFFIX, Task, close_matches, load_verbalisers

COLUMN_KEYS = ("audio", "label", "group", "id", "instruction", "group_pattern")
_NONE = ("", "none", "null")


def open_task(
    spec: str,
    cache_root: Path,
    seed: int = 0,
    n_per_class: int | None = None,
    progress: bool = False,
    columns: Mapping[str, str | None] | None = None,
    split: str | None = None,
    streaming: bool = False,
    max_seconds: float | None = MAX_CLIP_SECONDS,
    group_by: str | None = None,
    label_map: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Task, ClipSource]:
    """Resolve ``spec`` to its task and clip source, its labels checked (module docstring).

    Synthetic tasks are generated (once, cached under ``cache_root/synthetic``) and read back
    through their manifest, so every source takes the same decoding path. Dataset sources (registry
    Dynamic-SUPERB tasks, ``NAME=PATH``, dataset folders, hub ids) are read by ``HFSource``;
    ``columns`` overrides their column names (keys: audio, label, group, id, instruction,
    group_pattern; a value of None or "none" turns an optional one off, e.g. ``{"group": None}``),
    ``split`` picks the split (default: ``test``, or the only one) and ``streaming`` reads a hub
    dataset without a local copy. Every source decodes at most ``max_seconds`` of each clip.
    ``group_by`` is ``--group-by`` (see :func:`group_kind`); ``label_map`` is ``{task or "*": {from: to}}``.
    """
    task, source = _open(
        spec, cache_root, seed, n_per_class, progress, columns, split, streaming, max_seconds, group_by, label_map or {}
    )
    check_labels(task, source)
    return task, source


def _open(spec, cache_root, seed, n_per_class, progress, columns, split, streaming, max_seconds, group_by, maps):
    """:func:`open_task` before the label check."""
    tasks = registered_tasks()
    name, sep, target = spec.partition("=")
    name, revision = split_revision(name) if name.partition("@")[0] in tasks else (name, None)
    opts = _Opts(columns, split, streaming, max_seconds, maps, revision)
    if sep and not Path(spec).expanduser().exists():  # NAME=PATH (a path may contain '=' itself)
        if name not in tasks and target.lower().endswith(".csv"):  # NAME=path/manifest.csv names a manifest
            return _manifest_task(Path(target).expanduser(), max_seconds, maps, name=name.strip())
        if name not in tasks:
            raise SpeechprobeError(f"unknown task {name!r} in {spec!r}; {close_matches(name, list(tasks))}")
        if tasks[name].source == "synthetic":
            raise SpeechprobeError(f"{name} is a synthetic task: it is generated, not read from {target!r}")
        return _dataset_task(_grouped(tasks[name], group_by), target, opts)
    if name in tasks and not sep:
        task = tasks[name]
        if task.source == "synthetic":
            if revision:
                raise SpeechprobeError(f"{name} is a synthetic task: it has no revision to pin ({spec!r})")
            return task, _synthetic_source(spec, cache_root, seed, n_per_class, progress, max_seconds)
        return _dataset_task(_grouped(task, group_by), None, opts)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".csv":
        return _manifest_task(path, max_seconds, maps)
    from .hf import is_hub_id
    from .hf_layout import is_dataset_folder

    hub, revision = split_revision(spec) if "@" in spec and not path.exists() else (spec, None)
    if (path.exists() and (is_dataset_folder(path) or path.suffix in (".parquet", ".arrow"))) or is_hub_id(hub):
        return _user_dataset(hub, dataclasses.replace(opts, revision=revision))
    if path.exists():
        raise SpeechprobeError(
            f"{spec}: not a task source: expected a manifest .csv, a `save_to_disk` folder or a folder of parquet files"
        )
    raise SpeechprobeError(
        f"unknown task {spec!r}; {close_matches(spec, list(tasks))} "
        f"(or pass a manifest .csv, a local dataset folder, an HF id owner/name, or NAME=FOLDER)"
    )


def _synthetic_source(
    spec: str, cache_root: Path, seed: int, n_per_class: int | None, progress: bool, max_seconds: float | None
) -> ManifestSource:
    """A synthetic task's clips: generated once into ``cache_root/synthetic`` and read back through their manifest."""
    from .synthetic.generate import ensure_task

    size = f"n{n_per_class}" if n_per_class else "default"
    out_dir = cache_root / "synthetic" / f"{spec}-seed{seed}-{size}"
    csv, repaired = ensure_task(spec, out_dir, n_per_class=n_per_class, seed=seed, progress=progress)
    source = ManifestSource(csv, task=spec, max_seconds=max_seconds)
    source.repaired = repaired  # clips found damaged in the cache and rendered again (manifest.json)
    return source


def manifest_name(path: Path) -> str:
    """A manifest's task name: its folder's for the generic ``manifest.csv`` (``data/accent/manifest.csv`` ->
    ``accent``), else the file's (``tones.csv`` -> ``tones``)."""
    return (path.parent.resolve().name or path.stem) if path.stem.lower() == "manifest" else path.stem


def _manifest_task(
    path: Path, max_seconds: float | None, maps, task: Task | None = None, name: str | None = None
) -> tuple[Task, ManifestSource]:
    """A manifest .csv: a registered task's (``NAME=clips.csv``: its label set, map and words), or the user's own
    (named ``name``, else :func:`manifest_name`: its labels, groups and verbaliser sidecar
    ``manifest.verbalisers.json``)."""
    name = task.name if task else (name or manifest_name(path))
    mapping = {**(task.label_map if task else {}), **_user_map(name, path, maps)}
    source = ManifestSource(
        path, task=name, max_seconds=max_seconds, label_set=task.labels if task else (), label_map=mapping
    )
    if task is not None:
        group = "group" if source.has_groups else None
        kind = "group column" if group else ""  # a manifest's own groups replace the task's groupings
        task = dataclasses.replace(
            task, source=str(path), group_column=group, group_pattern=None, group_by=kind, group_name="group"
        )
        return dataclasses.replace(task, group_caveat=""), source
    labels = tuple(sorted(Counter(source.labels())))
    sidecar = path.with_name(path.stem + VERBALISER_SUFFIX)  # manifest.csv -> manifest.verbalisers.json
    words = dict(zip(("display_names", "verbalisers"), load_verbalisers(sidecar, labels))) if sidecar.is_file() else {}
    task = Task(
        name=name,
        labels=labels,
        dimension="unspecified",
        source=str(path),
        cue="user manifest",
        group_column="group" if source.has_groups else None,
        label_map=mapping,
        **words,
    )
    return task, source


def _user_map(task: str, local: Path | None, maps) -> dict[str, str]:
    """The user's spellings for ``task``: a ``.labelmap.json`` sidecar beside a local copy, then ``--label-map``."""
    side = label_sidecar(local) if local is not None else None
    from_file = label_map_for(task, read_label_map(side)) if side is not None and side.is_file() else {}
    return {**from_file, **label_map_for(task, maps)}


def _grouped(task: Task, group_by: str | None) -> Task:
    """``task`` grouped as ``--group-by`` asks (see :func:`group_kind`)."""
    kind = group_kind(group_by, task)
    return task.grouped_by(kind) if kind else task


def group_kind(group_by: str | None, task: Task) -> str | None:
    """The grouping ``--group-by`` picks for ``task``: ``KIND`` applies to every task that declares groupings,
    ``TASK=KIND`` to one task; None keeps the task's default. A task that declares groupings but not the
    asked one is an error (``Task.grouped_by``)."""
    chosen = None
    for item in (x.strip() for x in (group_by or "").split(",")):
        name, sep, kind = item.rpartition("=")
        if not item or (sep and name.strip() != task.name):
            continue
        if sep or task.groupings:
            chosen = kind.strip()
    return chosen


@dataclasses.dataclass(frozen=True)
class _Opts:
    """How to read a dataset source (the ``open_task`` options that dataset sources share)."""

    columns: Mapping[str, str | None] | None
    split: str | None
    streaming: bool
    max_seconds: float | None
    maps: Mapping[str, Mapping[str, str]]
    revision: str | None = None


_TASK_FIELDS = {  # a dataset column (hf.Columns) -> the Task field that names it
    "audio": "audio_column",
    "label": "label_column",
    "id": "id_column",
    "instruction": "instruction_column",
    "group": "group_column",
    "group_pattern": "group_pattern",
}


def _columns(task: Task | None, overrides: Mapping[str, str | None] | None):
    from .hf import Columns

    base = Columns() if task is None else Columns(**{col: getattr(task, field) for col, field in _TASK_FIELDS.items()})
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(COLUMN_KEYS))
    if unknown:
        raise ConfigError(f"unknown column option(s) {', '.join(unknown)}; use {', '.join(COLUMN_KEYS)}")
    clean = {
        k: (None if v is None or str(v).strip().lower() in _NONE else str(v).strip()) for k, v in overrides.items()
    }
    for required in ("audio", "label"):
        if required in clean and clean[required] is None:
            raise ConfigError(f"the {required} column cannot be turned off")
    if clean.get("group"):  # an explicit group column replaces the task's pattern
        clean.setdefault("group_pattern", None)
    return dataclasses.replace(base, **clean)


def _dataset_task(task: Task, local: str | None, o: _Opts) -> tuple[Task, ClipSource]:
    """A registered dataset task, read from its hub id or a local copy (a dataset folder or a manifest .csv)."""
    from .hf import HFSource

    task = dataclasses.replace(task, revision=o.revision or task.revision)
    path = Path(local).expanduser() if local else None
    if path is not None and path.suffix.lower() == ".csv":
        return _manifest_task(path, o.max_seconds, o.maps, task)
    cols = _columns(task, o.columns)
    if task.group_by and task.groupings.get(task.group_by) and "group" not in dict(o.columns or {}):
        cols = dataclasses.replace(cols, group_optional=task.groupings[task.group_by].optional)
    source = HFSource(
        local or task.source,
        task=task.name,
        split=o.split or task.split,
        columns=cols,
        label_set=task.labels,
        label_map={**task.label_map, **_user_map(task.name, path, o.maps)},
        streaming=o.streaming,
        revision=task.revision,
        name=task.name,
        max_seconds=o.max_seconds,
    )
    source.revision_record = source.revision_info()
    if path is not None:
        task = dataclasses.replace(task, source=str(path))
    cols = source.columns  # an optional group column the copy lacks is off
    kind = task.group_by
    if not (cols.group or cols.group_pattern):
        kind = ""  # no groups ("" keeps Task from choosing its default grouping again)
    elif "group" in dict(o.columns or {}) or "group_pattern" in dict(o.columns or {}):
        kind = "group column"
    caveat = task.group_caveat if kind == task.group_by else ""
    return dataclasses.replace(
        task, group_by=kind, group_column=cols.group, group_pattern=cols.group_pattern, group_caveat=caveat
    ), source


def _user_dataset(spec: str, o: _Opts) -> tuple[Task, ClipSource]:
    """Any HF audio dataset (local folder or hub id): the label set is what the data holds."""
    from .hf import HFSource

    cols = _columns(None, o.columns)
    local = Path(spec).expanduser() if Path(spec).expanduser().exists() else None
    name = Path(spec.rstrip("/")).name or spec
    source = HFSource(
        spec,
        split=o.split,
        columns=cols,
        streaming=o.streaming,
        revision=o.revision,
        label_map=_user_map(name, local, o.maps),
        max_seconds=o.max_seconds,
    )
    source.revision_record = source.revision_info()
    counts = Counter(source.labels())
    task = Task(
        name=source.task,
        labels=tuple(sorted(counts)),
        dimension="unspecified",
        source=spec,
        cue="user dataset",
        **{field: getattr(cols, col) for col, field in _TASK_FIELDS.items()},
        split=source.split,
        revision=o.revision,
    )
    return task, source


def check_labels(task: Task, source: ClipSource) -> None:
    """Stop before any work when more than a small share of the rows carry labels outside ``task``'s set."""
    outside = getattr(source, "label_survey", None)
    if task.labels and outside is not None:
        counts, total = outside()
        check_outside_share(task.name, task.labels, counts, total)
