"""Label checks before any work: a task whose rows mostly fall outside its declared label set stops.

A few rows outside the set (at most ``MAX_OUTSIDE_SHARE``, 5 %, of the labelled rows, or a single row)
are skipped with a counted reason, as before; more than that means the copy does not match the task (another revision,
another label scheme, e.g. HowFarAreYou's earlier ``0.0 … 1.3`` distance labels), so the run stops
before extraction with the unexpected values, their counts, and how to map them: ``--label-map``
(inline ``FROM=TO`` pairs, optionally ``TASK:FROM=TO``, or a JSON file) or a sidecar file
``<copy>.labelmap.json`` beside the data.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError
from .source import normalise_label

#: The largest share of labelled rows that may fall outside the declared label set (skipped, counted); a
#: single stray row never stops a run (one row of a tiny copy is more than 5 %).
MAX_OUTSIDE_SHARE = 0.05
SIDECAR_SUFFIX = ".labelmap.json"
ALL_TASKS = "*"


def parse_label_map(value: str | Mapping | None) -> dict[str, dict[str, str]]:
    """``--label-map`` as ``{task or "*": {from: to}}``.

    ``value`` is a JSON file (``{"0.0": "0.4m"}`` for every task, or ``{"ds-distance": {"0.0": "0.4m"}}``),
    inline pairs ``FROM=TO,FROM=TO`` (every task) or ``TASK:FROM=TO``, or an already parsed mapping.
    """
    if not value:
        return {}
    if isinstance(value, Mapping):
        return _nested(dict(value), "--label-map")
    text = str(value).strip()
    path = Path(text).expanduser()
    if text.lower().endswith(".json") or path.is_file():
        return read_label_map(path)
    out: dict[str, dict[str, str]] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        left, sep, to = item.rpartition("=")
        task, colon, source = left.partition(":") if ":" in left else ("", "", left)
        if not sep or not source.strip() or not to.strip() or (colon and not task.strip()):
            raise ConfigError(f"--label-map {item!r}: expected FROM=TO or TASK:FROM=TO (or a .json file)")
        out.setdefault(task.strip() or ALL_TASKS, {})[normalise_label(source)] = to.strip()
    return out


def read_label_map(path: Path) -> dict[str, dict[str, str]]:
    """A label-map JSON file (see :func:`parse_label_map`), or a one-line error naming it."""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"label map {path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise ConfigError(f"label map {path}: not valid JSON ({e})") from None
    return _nested(entries, f"label map {path}")


def _nested(entries, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(entries, dict):
        raise ConfigError(f'{where}: expected an object {{"FROM": "TO"}} or {{"TASK": {{"FROM": "TO"}}}}')
    flat = {k: v for k, v in entries.items() if not isinstance(v, dict)}
    out = {str(t): dict(m) for t, m in entries.items() if isinstance(m, dict)}
    if flat:
        out[ALL_TASKS] = {**out.get(ALL_TASKS, {}), **flat}
    for task, mapping in out.items():
        bad = [k for k, v in mapping.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ConfigError(f"{where}: label {bad[0]!r} of {task} must map to a non-empty string")
        out[task] = {normalise_label(k): v.strip() for k, v in mapping.items()}
    return out


def label_map_for(task: str, maps: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The user's mapping for ``task``: the every-task entries, then the task's own."""
    return {**maps.get(ALL_TASKS, {}), **maps.get(task, {})}


def sidecar(path: str | Path) -> Path:
    """The label-map sidecar of a local copy: ``clips.csv`` -> ``clips.labelmap.json``, ``DIR`` -> ``DIR.labelmap.json``
    (beside the folder)."""
    p = Path(path).expanduser()
    return p.with_name((p.stem if p.suffix else p.name) + SIDECAR_SUFFIX)


def check_outside_share(
    task: str, label_set: tuple[str, ...], outside: Counter, total: int, max_share: float = MAX_OUTSIDE_SHARE
) -> None:
    """Stop (one line) when more than ``max_share`` of the ``total`` labelled rows (and more than one row)
    carry ``outside`` labels."""
    n = sum(outside.values())
    if not total or n <= max(1, max_share * total):
        return
    values = ", ".join(f"{v!r} {c}" for v, c in sorted(outside.items(), key=lambda kv: (-kv[1], kv[0])))
    example = next(iter(sorted(outside, key=lambda v: -outside[v])))
    raise ConfigError(
        f"task {task}: {n} of {total} labelled rows ({n / total:.0%}, more than {max_share:.0%}) carry labels "
        f"outside its set ({', '.join(label_set)}): {values}; this copy does not match the task (another "
        f"revision or label scheme?): pin a revision (--tasks {task}@COMMIT) or map the values, e.g. "
        f"--label-map '{task}:{example}={label_set[0]}' or a JSON file of the same pairs "
        f'({{"{task}": {{"{example}": "{label_set[0]}"}}}}; also read from a {SIDECAR_SUFFIX} sidecar beside a '
        f"local copy)"
    )
