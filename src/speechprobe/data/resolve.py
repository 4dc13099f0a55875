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
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError, SpeechprobeError
from .audio import MAX_CLIP_SECONDS
from .manifest import ManifestSource
from .registry import registered_tasks
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
) -> tuple[Task, ClipSource]:
    """Resolve ``spec`` to its task and clip source.

    Synthetic tasks are generated (once, cached under ``cache_root/synthetic``) and read back
    through their manifest, so every source takes the same decoding path. Dataset sources (registry
    Dynamic-SUPERB tasks, ``NAME=PATH``, dataset folders, hub ids) are read by ``HFSource``;
    ``columns`` overrides their column names (keys: audio, label, group, id, instruction,
    group_pattern; a value of None or "none" turns an optional one off, e.g. ``{"group": None}``),
    ``split`` picks the split (default: ``test``, or the only one) and ``streaming`` reads a hub
    dataset without a local copy. Every source decodes at most ``max_seconds`` of each clip.
    """
    tasks = registered_tasks()
    name, sep, target = spec.partition("=")
    if sep and not Path(spec).expanduser().exists():  # NAME=PATH (a path may contain '=' itself)
        if name not in tasks and target.lower().endswith(".csv"):  # NAME=path/manifest.csv names a manifest
            return _manifest_task(Path(target).expanduser(), max_seconds, name.strip())
        if name not in tasks:
            raise SpeechprobeError(f"unknown task {name!r} in {spec!r}; {close_matches(name, list(tasks))}")
        if tasks[name].source == "synthetic":
            raise SpeechprobeError(f"{name} is a synthetic task: it is generated, not read from {target!r}")
        return _dataset_task(tasks[name], target, columns, split, streaming, max_seconds)
    if spec in tasks:
        task = tasks[spec]
        if task.source == "synthetic":
            return task, _synthetic_source(spec, cache_root, seed, n_per_class, progress, max_seconds)
        return _dataset_task(task, None, columns, split, streaming, max_seconds)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".csv":
        return _manifest_task(path, max_seconds)
    from .hf import is_hub_id
    from .hf_layout import is_dataset_folder

    if (path.exists() and (is_dataset_folder(path) or path.suffix in (".parquet", ".arrow"))) or is_hub_id(spec):
        return _user_dataset(spec, columns, split, streaming, max_seconds)
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


def _manifest_task(path: Path, max_seconds: float | None, name: str | None = None) -> tuple[Task, ManifestSource]:
    """A user manifest .csv (named ``name``, else :func:`manifest_name`): its labels, groups and verbaliser
    sidecar (``manifest.verbalisers.json``)."""
    name = name or manifest_name(path)
    source = ManifestSource(path, task=name, max_seconds=max_seconds)
    labels = tuple(sorted(Counter(source.labels())))
    sidecar = path.with_name(path.stem + VERBALISER_SUFFIX)  # manifest.csv -> manifest.verbalisers.json
    words = dict(zip(("display_names", "verbalisers"), load_verbalisers(sidecar, labels))) if sidecar.is_file() else {}
    task = Task(
        name=name,
        labels=labels,
        paralinguistic=False,
        source=str(path),
        cue="user manifest",
        group_column="group" if source.has_groups else None,
        **words,
    )
    return task, source


def _columns(task: Task | None, overrides: Mapping[str, str | None] | None):
    from .hf import Columns

    base = (
        Columns()
        if task is None
        else Columns(
            audio=task.audio_column,
            label=task.label_column,
            id=task.id_column,
            instruction=task.instruction_column,
            group=task.group_column,
            group_pattern=task.group_pattern,
        )
    )
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


def _dataset_task(task: Task, local: str | None, columns, split, streaming, max_seconds) -> tuple[Task, ClipSource]:
    """A registered dataset task, read from its hub id or a local copy."""
    from .hf import HFSource

    cols = _columns(task, columns)
    source = HFSource(
        local or task.source,
        task=task.name,
        split=split or task.split,
        columns=cols,
        label_set=task.labels,
        label_map=task.label_map,
        streaming=streaming,
        name=task.name,
        max_seconds=max_seconds,
    )
    if local:
        task = dataclasses.replace(task, source=str(Path(local).expanduser()))
    return dataclasses.replace(task, group_column=cols.group, group_pattern=cols.group_pattern), source


def _user_dataset(spec: str, columns, split, streaming, max_seconds) -> tuple[Task, ClipSource]:
    """Any HF audio dataset (local folder or hub id): the label set is what the data holds."""
    from .hf import HFSource

    cols = _columns(None, columns)
    source = HFSource(spec, split=split, columns=cols, streaming=streaming, max_seconds=max_seconds)
    counts = Counter(source.labels())
    task = Task(
        name=source.task,
        labels=tuple(sorted(counts)),
        paralinguistic=False,
        source=spec,
        cue="user dataset",
        group_column=cols.group,
        audio_column=cols.audio,
        label_column=cols.label,
        id_column=cols.id,
        instruction_column=cols.instruction,
        group_pattern=cols.group_pattern,
        split=source.split,
    )
    return task, source
