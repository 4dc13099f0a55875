"""Clip sources: iterate clips lazily and record what was skipped and why."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .clip import Clip

log = logging.getLogger("speechprobe")


@dataclass(frozen=True)
class Skip:
    """An item left out of the run, with the reason (goes into manifest.json)."""

    task: str
    item: str
    reason: str


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
    """Collects skips for one task and warns once per item."""

    task: str
    skipped: list[Skip] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)

    def add(self, item: str, reason: str) -> None:
        if item not in self._warned:  # sources are read once per model: warn once
            log.warning("skipped %s in task %s: %s", item, self.task, reason)
            self._warned.add(item)
        self.skipped.append(Skip(self.task, item, reason))


def normalise_label(label: object) -> str:
    """Canonical spelling of a label: stripped, single-spaced, lower case."""
    return " ".join(str(label).split()).lower()


def sha256_lines(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()
