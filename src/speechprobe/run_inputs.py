"""What a run read, recorded so that a rerun finds the same inputs and a difference can be traced to one.

:func:`task_input` describes a ``--tasks`` entry: a local source (manifest CSV, dataset folder, ``NAME=PATH``)
with its path resolved, so a rerun does not depend on the working directory, and a manifest file's sha256.
The pipeline stores it in manifest.json under ``tasks.<task>.input``. :func:`changed_inputs` compares two
runs' inputs (task sources, each clip's content hash and label in ``clips/<task>.csv``, model weights) and
says which changed, in one line each: the place where ``speechprobe reproduce`` compares inputs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from .csvsafe import read_csv
from .errors import SpeechprobeError

SHOWN = 5  # clip ids named per line; the rest are counted


def task_input(spec: str) -> dict[str, str]:
    """``spec`` with its local path resolved (``resolved``) and, for a file, its sha256; registry names and hub
    ids as they are (their clips' content hashes identify them)."""
    from .data.registry import registered_tasks

    name, sep, target = spec.partition("=")
    named = bool(sep) and not Path(spec).expanduser().exists()  # NAME=PATH, as data.resolve.open_task reads it
    if not named and spec in registered_tasks():
        return {"spec": spec}
    path = Path(target if named else spec).expanduser()
    if not path.exists():
        return {"spec": spec}
    resolved = str(path.resolve())
    out = {"spec": spec, "resolved": f"{name}={resolved}" if named else resolved}
    if path.is_file():
        out["sha256"] = file_sha256(path)
    return out


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def resolved_tasks(specs: list[str], manifest: dict) -> list[str]:
    """The ``--tasks`` entries of a recorded run, local paths replaced by the resolved ones it read."""
    recorded = {
        info["input"]["spec"]: info["input"].get("resolved")
        for info in (manifest.get("tasks") or {}).values()
        if isinstance(info, dict) and isinstance(info.get("input"), dict) and "spec" in info["input"]
    }
    return [recorded.get(s) or s for s in specs]


def changed_inputs(old: Path, new: Path) -> list[str]:
    """One line per input that differs between the runs in ``old`` and ``new`` (empty: the same inputs)."""
    a, b = (_manifest(d) for d in (old, new))
    lines = []
    tasks_a, tasks_b = a.get("tasks") or {}, b.get("tasks") or {}
    for task in sorted(set(tasks_a) | set(tasks_b)):
        if task not in tasks_b or task not in tasks_a:
            lines.append(f"task {task}: only in {'the original run' if task in tasks_a else 'the rerun'}")
            continue
        lines += _task_changes(task, old, tasks_a[task], new, tasks_b[task])
    models_a, models_b = a.get("models") or {}, b.get("models") or {}
    for model in sorted(set(models_a) & set(models_b)):
        ra, rb = models_a[model].get("revision"), models_b[model].get("revision")
        if ra != rb:
            lines.append(f"model {model}: weights {ra} → {rb}")
    return lines


def _manifest(run_dir: Path) -> dict:
    from .rundir import RunDir

    return RunDir(run_dir).read_manifest()


def _task_changes(task: str, old: Path, info_a: dict, new: Path, info_b: dict) -> list[str]:
    lines = []
    ia, ib = info_a.get("input") or {}, info_b.get("input") or {}
    if ia.get("sha256") and ib.get("sha256") and ia["sha256"] != ib["sha256"]:
        source = ib.get("resolved", ib.get("spec"))
        lines.append(f"task {task}: {source} changed (sha256 {ia['sha256'][:12]} → {ib['sha256'][:12]})")
    clips_a, clips_b = _clips(old, info_a), _clips(new, info_b)
    if clips_a is None or clips_b is None:
        return lines
    both = clips_a.index.intersection(clips_b.index)
    for what, ids in (
        ("clips whose audio changed", both[clips_a.loc[both, "content_hash"] != clips_b.loc[both, "content_hash"]]),
        ("clips whose label changed", both[clips_a.loc[both, "label"] != clips_b.loc[both, "label"]]),
        ("clips gone", clips_a.index.difference(clips_b.index)),
        ("clips added", clips_b.index.difference(clips_a.index)),
    ):
        if len(ids):
            more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
            lines.append(f"task {task}: {len(ids)} {what}: {', '.join(map(str, ids[:SHOWN]))}{more}")
    return lines


def _clips(run_dir: Path, info: dict) -> pd.DataFrame | None:
    """A task's clip list indexed by clip id (None when the run has none)."""
    path = Path(run_dir) / str(info.get("clips_file", ""))
    if not info.get("clips_file") or not path.is_file():
        return None
    try:
        frame = read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as e:
        raise SpeechprobeError(f"{path}: not a readable clip list ({e})") from None
    if not {"id", "label", "content_hash"} <= set(frame.columns):
        raise SpeechprobeError(f"{path}: not a clip list (needs id, label and content_hash columns)")
    return frame.drop_duplicates("id").set_index("id")


__all__ = ["changed_inputs", "file_sha256", "resolved_tasks", "task_input"]
