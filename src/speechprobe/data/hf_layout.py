"""On-disk layout of HF datasets: ``save_to_disk`` folders and parquet/arrow folders, and the split of a data file.

Kept apart from ``hf.py`` (the loader) because these helpers only look at files and paths, never at rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SPLIT_WORDS = {  # words in a data file's path -> its split, as the hub names them
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "val", "dev"), "validation"),
    **dict.fromkeys(("test", "testing", "eval", "evaluation"), "test"),
}
DATA_SUFFIXES = (".parquet", ".arrow")


def is_dataset_folder(path: Path) -> bool:
    """A ``save_to_disk`` folder or a folder holding parquet/arrow files."""
    return path.is_dir() and (is_saved(path) or bool(data_files(path)))


def is_saved(path: Path) -> bool:
    """A ``save_to_disk`` folder (a dataset or a dataset dict)."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def empty_saved_splits(path: Path) -> list[str]:
    """Splits of a ``save_to_disk`` folder saved without any data shard."""
    folders = {"": path}
    if (path / "dataset_dict.json").is_file():
        try:
            names = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        except (OSError, ValueError):
            return []
        folders = {repr(n): path / n for n in names}
    empty = []
    for name, folder in folders.items():
        try:
            state = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if not state.get("_data_files"):
            empty.append(name)
    return empty


def data_files(folder: Path) -> list[Path]:
    """Parquet files under ``folder`` (else arrow files), sorted; hidden folders left out."""
    for suffix in DATA_SUFFIXES:
        files = sorted(
            p
            for p in folder.rglob(f"*{suffix}")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if files:
            return files
    return []


def split_of(rel: Path) -> str:
    """The split a data file belongs to, from the words in its path (as the hub names them)."""
    for token in re.split(r"[/_.\-\s]+", rel.as_posix().lower()):
        if token in SPLIT_WORDS:
            return SPLIT_WORDS[token]
    return "train"
