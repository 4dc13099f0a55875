"""Clip sources: iterate clips lazily and record what was skipped and why."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .clip import Clip

log = logging.getLogger("speechprobe")


@dataclass(frozen=True)
class Skip:
    """An item left out of the run (or, in ``SkipLog.notes``, used with a caveat), with the reason and its
    kind (goes into manifest.json, counted per kind)."""

    task: str
    item: str
    reason: str
    kind: str = "audio"  # audio, empty_label, label_outside_set, too_short, duplicate; notes: cut, short_data


class ClipSource(Protocol):
    """An iterable of clips that records skipped items in ``skipped``."""

    task: str
    skipped: list[Skip]

    def __iter__(self) -> Iterator[Clip]: ...

    def fingerprint(self) -> str:
        """A content fingerprint of the source (paths/sizes/labels), for the manifest."""
        ...


@dataclass
class SkipLog:
    """Collects skips (and notes on clips used with a caveat) for one task; warns once per item."""

    task: str
    skipped: list[Skip] = field(default_factory=list)
    notes: list[Skip] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)

    def clear(self) -> None:
        """Forget what an earlier pass over the source recorded (sources are read once per model)."""
        self.skipped.clear()
        self.notes.clear()

    def add(self, item: str, reason: str, kind: str = "audio") -> None:
        self._warn(item, f"skipped {item} in task {self.task}: {reason}")
        self.skipped.append(Skip(self.task, item, reason, kind))

    def note(self, item: str, reason: str, kind: str) -> None:
        """A clip that is used, with a caveat (cut at ``max_clip_seconds``, a header longer than its data)."""
        self._warn(f"{item}\t{kind}", f"{item} in task {self.task}: {reason}")
        self.notes.append(Skip(self.task, item, reason, kind))

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:  # sources are read once per model: warn once
            log.warning("%s", message)
            self._warned.add(key)


class LoggedSource:
    """A source's ``skipped`` and ``notes``, kept in its ``_log``."""

    _log: SkipLog

    @property
    def skipped(self) -> list[Skip]:
        return self._log.skipped

    @property
    def notes(self) -> list[Skip]:
        return self._log.notes


def count_kinds(items: list[Skip]) -> dict[str, int]:
    """How many items of each kind (for manifest.json)."""
    return dict(sorted(Counter(s.kind for s in items).items()))


def normalise_label(label: object) -> str:
    """Canonical spelling of a label: stripped, single-spaced, lower case."""
    return " ".join(str(label).split()).lower()


def sha256_lines(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()
