"""Manifest CSV source: ``path,label[,group]`` with paths relative to the CSV.

Labels are normalised and mapped through ``label_map``; with a ``label_set`` (a registered task read from
a manifest, ``NAME=clips.csv``) a row whose label is outside it is skipped with a counted reason
(``label_outside_set``), and ``label_survey`` feeds the check that stops a mostly mismatched manifest before
extraction (``data/labels.py``). Rows with an empty path or label are skipped with a counted reason
(``empty_label``); each file is decoded up to ``max_seconds`` (longer files are cut, with a counted note),
and a WAV whose header claims more data than the file holds is used with a counted note.
``Clip.meta["native"]`` holds the source facts measured before mixdown and resampling
(:class:`speechprobe.data.audio.Decoded`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import AudioError, SpeechprobeError
from ..parallel import ordered_map
from .audio import MAX_CLIP_SECONDS, Decoded, read, validate
from .clip import Clip
from .source import LoggedSource, SkipLog, normalise_label, sha256_lines

REQUIRED = ("path", "label")
DECODE_WORKERS = 2


class ManifestSource(LoggedSource):
    """Clips listed in a manifest CSV; undecodable rows are skipped with a reason naming the row."""

    def __init__(
        self,
        csv_path: str | os.PathLike,
        task: str | None = None,
        max_seconds: float | None = MAX_CLIP_SECONDS,
        label_set: Sequence[str] = (),
        label_map: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(csv_path)
        self.label_set = tuple(label_set)
        self.label_map = {normalise_label(k): v for k, v in (label_map or {}).items()}
        self.outside_label_set: Counter[str] = Counter()
        self.max_seconds = max_seconds
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

    def __len__(self) -> int:
        return len(self.table)

    def labels(self) -> list[str]:
        """Labels of the rows that will be read (rows with an empty path or label, or outside the label set,
        left out)."""
        return [self._label(r["label"]) for r in self.table.to_dict("records") if self._problem(r) is None]

    def label_survey(self) -> tuple[Counter[str], int]:
        """(labels outside the label set by spelling, rows with a label), for the pre-extraction check."""
        labels = [self._label(x) for x in self.table["label"] if normalise_label(x)]
        return Counter(x for x in labels if self.label_set and x not in self.label_set), len(labels)

    def _label(self, raw: str) -> str:
        label = normalise_label(raw)
        return self.label_map.get(label, label)

    def _problem(self, rec: dict) -> tuple[str, str] | None:
        """Why a row cannot be used before its file is read: (reason, kind), or None."""
        problem = _problem(rec)
        if problem is None and self.label_set and self._label(rec["label"]) not in self.label_set:
            return (
                f"label {rec['label']!r} is outside the label set of {self.task} ({', '.join(self.label_set)})",
                "label_outside_set",
            )
        return problem

    def groups(self) -> list[str | None] | None:
        """The group of every row ``labels()`` keeps (None where the cell is empty), or None without a
        group column."""
        if not self.has_groups:
            return None
        return [r["group"] or None for r in self.table.to_dict("records") if self._problem(r) is None]

    def __iter__(self) -> Iterator[Clip]:
        """Decode rows in parallel workers, yielding clips in manifest order."""
        self._log.clear()
        self.outside_label_set.clear()
        rows = enumerate(self.table.to_dict("records"), start=2)
        for row_no, rec, result in ordered_map(self._decode, rows, workers=DECODE_WORKERS):
            where = f"{self.path.name} row {row_no} ({rec['path']})"
            if isinstance(result, tuple):
                self._log.add(where, *result)
                if result[1] == "label_outside_set":
                    self.outside_label_set[self._label(rec["label"])] += 1
                continue
            for reason, kind in result.notes(self.max_seconds):
                self._log.note(where, reason, kind)
            meta: dict[str, Any] = {k: v for k, v in rec.items() if k not in (*REQUIRED, "group")}
            meta["native"] = result.native
            if self.label_map:
                meta["label_original"] = rec["label"]
            yield Clip(
                id=rec["path"],
                audio=result.audio,
                sample_rate=result.sample_rate,
                label=self._label(rec["label"]),
                group=rec.get("group") or None,
                meta=meta,
            )

    def _decode(self, row: tuple[int, dict]) -> tuple[int, dict, Decoded | tuple[str, str]]:
        """Decode one row; a failure becomes its (reason, kind)."""
        row_no, rec = row
        problem = self._problem(rec)
        if problem is not None:
            return row_no, rec, problem
        rel = rec["path"]
        try:
            decoded = read(self.path.parent / rel, self.max_seconds)
            validate(decoded.audio, f"{self.path.name} row {row_no} ({rel})")
        except AudioError as e:
            return row_no, rec, (str(e), "audio")
        return row_no, rec, decoded

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
        if self.label_set or self.label_map:  # a registered task's manifest, or mapped spellings
            lines += [repr(self.label_set), repr(sorted(self.label_map.items()))]
        return sha256_lines(lines)


def _problem(rec: dict) -> tuple[str, str] | None:
    """Why a row cannot be used before its file is read: (reason, kind), or None."""
    if not normalise_label(rec["label"]):
        return "empty label", "empty_label"
    if not rec["path"].strip():
        return "empty path", "audio"
    return None
