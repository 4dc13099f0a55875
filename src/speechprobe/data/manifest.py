"""Manifest CSV source: ``path,label[,group]`` with paths relative to the CSV."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AudioError, SpeechprobeError
from ..parallel import ordered_map
from .audio import read_audio, validate
from .clip import Clip
from .source import SkipLog, normalise_label, sha256_lines

REQUIRED = ("path", "label")
DECODE_WORKERS = 2


class ManifestSource:
    """Clips listed in a manifest CSV; undecodable rows are skipped with a reason naming the row."""

    def __init__(self, csv_path: str | os.PathLike, task: str | None = None) -> None:
        self.path = Path(csv_path)
        if not self.path.is_file():
            raise SpeechprobeError(f"{self.path}: manifest not found")
        try:
            self.table = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except Exception as e:
            raise SpeechprobeError(f"{self.path}: not a readable CSV ({e})") from None
        missing = [c for c in REQUIRED if c not in self.table.columns]
        if missing:
            raise SpeechprobeError(
                f"{self.path}: manifest lacks column(s) {', '.join(missing)}; "
                f"it needs path,label[,group] (has: {', '.join(self.table.columns) or 'none'})"
            )
        if self.table.empty:
            raise SpeechprobeError(f"{self.path}: manifest has no rows")
        self.task = task or self.path.stem
        self._log = SkipLog(self.task)
        self.has_groups = "group" in self.table.columns and bool((self.table["group"] != "").any())

    @property
    def skipped(self):
        return self._log.skipped

    def __len__(self) -> int:
        return len(self.table)

    def labels(self) -> list[str]:
        return [normalise_label(x) for x in self.table["label"]]

    def groups(self) -> list[str | None] | None:
        """The group of every row (None where the cell is empty), or None without a group column."""
        if not self.has_groups:
            return None
        return [g or None for g in self.table["group"]]

    def __iter__(self) -> Iterator[Clip]:
        """Decode rows in parallel workers, yielding clips in manifest order."""
        self._log.skipped.clear()
        rows = enumerate(self.table.to_dict("records"), start=2)
        for row_no, rec, result in ordered_map(self._decode, rows, workers=DECODE_WORKERS):
            where = f"{self.path.name} row {row_no} ({rec['path']})"
            if isinstance(result, str):
                self._log.add(where, result)
                continue
            audio, sr = result
            yield Clip(
                id=rec["path"],
                audio=audio,
                sample_rate=sr,
                label=normalise_label(rec["label"]),
                group=rec.get("group") or None,
                meta={k: v for k, v in rec.items() if k not in (*REQUIRED, "group")},
            )

    def _decode(self, row: tuple[int, dict]) -> tuple[int, dict, tuple[np.ndarray, int] | str]:
        """Decode one row; a failure becomes its reason (a string)."""
        row_no, rec = row
        rel = rec["path"]
        if not rel or not normalise_label(rec["label"]):
            return row_no, rec, "empty path or label"
        try:
            audio, sr = read_audio(self.path.parent / rel)
            validate(audio, f"{self.path.name} row {row_no} ({rel})")
        except AudioError as e:
            return row_no, rec, str(e)
        return row_no, rec, (audio, sr)

    def fingerprint(self) -> str:
        """Hash of the manifest rows and each file's size and mtime."""
        lines = []
        for rel in self.table["path"]:
            p = self.path.parent / rel
            try:
                st = p.stat()
                lines.append(f"{rel}\t{st.st_size}")
            except OSError:
                lines.append(f"{rel}\tmissing")
        lines.extend(self.table.to_csv(index=False).splitlines())
        return sha256_lines(lines)
