"""What the analyses read from a finished run directory, and how their tables are written.

``manifest.json`` (config, models with their feature spaces, tasks), ``clips/<task>.csv`` (id, label,
group, content hash) and the feature store the manifest names (:func:`store_loader`). Analyses never
re-run a model: their features come from the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..csvsafe import read_csv
from ..errors import SpeechprobeError
from ..files import atomic_write
from ..rundir import csv_bytes, slug

FeatureLoader = Callable[[str, Sequence[str]], np.ndarray]  # (model, content hashes) -> (N, L, D)


def write_table(path: Path, frame: pd.DataFrame, columns: Sequence[str]) -> Path:
    """Atomically write ``frame[columns]`` as CSV (missing columns are added empty)."""
    data = csv_bytes(frame.reindex(columns=list(columns)))
    return atomic_write(Path(path), lambda fh: fh.write(data))


def read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV written by :func:`write_table`; raises SpeechprobeError when columns are missing."""
    frame = read_csv(path, keep_default_na=True)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SpeechprobeError(f"{Path(path).name} lacks column(s): {', '.join(missing)}")
    for col in ("model", "task", "probe", "scheme"):
        if col in frame.columns:
            frame[col] = frame[col].astype(str)
    return frame


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SpeechprobeError(f"{run_dir}: no manifest.json; finish the run first") from None
    except (OSError, json.JSONDecodeError) as e:
        raise SpeechprobeError(f"{path}: cannot read ({e})") from None


def read_clips(run_dir: Path, task: str, info: dict | None = None) -> pd.DataFrame:
    """``clips/<task>.csv`` (id, label, group, duration, content_hash) as strings."""
    rel = (info or {}).get("clips_file") or f"clips/{slug(task)}.csv"
    path = Path(run_dir) / rel
    if not path.is_file():
        raise SpeechprobeError(f"task {task}: {rel} is missing")
    frame = read_csv(path, dtype=str, keep_default_na=False)
    for col in ("label", "content_hash"):
        if col not in frame.columns:
            raise SpeechprobeError(f"task {task}: {rel} lacks column {col!r}")
    if "group" not in frame.columns:
        frame["group"] = ""
    return frame


def store_loader(run_dir: Path, cache: Path | None = None, pooling: str | None = None) -> FeatureLoader:
    """A loader reading the run's feature store: ``manifest.json``'s ``config.cache`` (or ``cache``,
    else the default speechprobe cache) and each model's (or analysis target's) ``space``; with ``pooling``,
    the model's space of that pooling variant (``pooling_spaces``, stored with ``--pooling-variants``)."""
    from ..cache import cache_root
    from ..features.store import FeatureSpace

    manifest = read_manifest(run_dir)
    if cache is None and manifest.get("config", {}).get("cache"):
        cache = Path(manifest["config"]["cache"])
    root = cache_root(cache) / "features"
    models = {**(manifest.get("targets") or {}), **manifest.get("models", {})}  # targets: e.g. acoustic cues

    def load(model: str, hashes: Sequence[str]) -> np.ndarray:
        entry = models.get(model) or {}
        space = entry.get("space") if pooling is None else (entry.get("pooling_spaces") or {}).get(pooling)
        if pooling is None and entry.get("spaces"):  # decoder states (decoder_stage): one space per task's prompt
            space = _space_holding(root, entry["spaces"].values(), hashes)
        if not space:
            what = f" of pooling {pooling}" if pooling else ""
            raise SpeechprobeError(f"model {model}: manifest.json names no feature space{what}")
        missing = [h for h in hashes if not (root / space / "items" / h[:2] / f"{h}.npy").is_file()]
        if missing:
            raise SpeechprobeError(
                f"model {model}: {len(missing)} of {len(hashes)} clips are not in the feature store {root / space}"
            )
        return FeatureSpace(root / space, {}).gather(list(hashes))

    return load


def _space_holding(root: Path, spaces: Iterable[str], hashes: Sequence[str]) -> str | None:
    """The one space of ``spaces`` that holds every clip of ``hashes`` (None when none or several do)."""
    from ..features.store import FeatureSpace

    holding = [s for s in spaces if all(FeatureSpace(root / s, {}).has(h) for h in hashes)]
    return holding[0] if len(holding) == 1 else None
