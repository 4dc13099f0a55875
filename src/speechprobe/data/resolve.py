"""Turn a ``--tasks`` entry into a Task and a clip source: registry name, manifest CSV, or dataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import SpeechprobeError
from .manifest import ManifestSource
from .source import ClipSource
from .tasks import Task, close_matches, registered_tasks


def open_task(
    spec: str,
    cache_root: Path,
    seed: int = 0,
    n_per_class: int | None = None,
    progress: bool = False,
) -> tuple[Task, ClipSource]:
    """Resolve ``spec`` (a registry name or a manifest CSV path) to its task and clip source.

    Synthetic tasks are generated (once, cached under ``cache_root/synthetic``) and read back
    through their manifest, so every source takes the same decoding path.
    """
    tasks = registered_tasks()
    if spec in tasks:
        task = tasks[spec]
        if task.source == "synthetic":
            from .synthetic.suite import generate_task

            size = f"n{n_per_class}" if n_per_class else "default"
            out_dir = cache_root / "synthetic" / f"{spec}-seed{seed}-{size}"
            csv = generate_task(spec, out_dir, n_per_class=n_per_class, seed=seed, progress=progress)
            return task, ManifestSource(csv, task=spec)
        raise SpeechprobeError(f"task {spec!r} reads {task.source}, which this build cannot load yet")
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".csv":
        source = ManifestSource(path)
        counts = Counter(source.labels())
        task = Task(
            name=path.stem,
            labels=tuple(sorted(counts)),
            paralinguistic=False,
            source=str(path),
            cue="user manifest",
            group_column="group" if source.has_groups else None,
        )
        return task, source
    raise SpeechprobeError(f"unknown task {spec!r}; {close_matches(spec, list(tasks))} (or pass a manifest .csv)")
