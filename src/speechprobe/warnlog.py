"""Library warnings, captured in one place: counted for manifest.json and shown once each.

Inside :func:`capture_warnings` every warning that the warnings filters let through (by default each
source line once; any thread, as the hook is process-wide) is recorded instead of printed: the first
occurrence of each kind (category and first line of the message) is logged as one short line, later
ones are only counted; with the ``speechprobe`` logger
at DEBUG (``--debug``) the full message and its source line are logged instead. Captures nest: an
inner one records into the outer log, so one run counts every warning once.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("speechprobe")


@dataclass
class WarningLog:
    """Counts of captured warnings by kind, with the first full text of each."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    first: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, message, category, filename, lineno, file=None, line=None) -> None:
        """``warnings.showwarning`` replacement."""
        text = str(message)
        kind = (category.__name__, (text.strip().splitlines() or [""])[0][:200])
        with self._lock:
            seen = kind in self.counts
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if not seen:
                self.first[kind] = f"{filename}:{lineno}: {category.__name__}: {text}"
        if seen:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("library warning %s", self.first[kind])
        else:
            log.warning("library warning: %s: %s (shown once; --debug shows it in full)", *kind)

    def mark(self) -> dict[tuple[str, str], int]:
        """The counts so far (pass to :meth:`as_json` to count only what came after)."""
        with self._lock:
            return dict(self.counts)

    def as_json(self, since: dict[tuple[str, str], int] | None = None) -> dict:
        """For manifest.json: the total and one entry per kind (only those after ``since`` when given)."""
        since = since or {}
        with self._lock:
            kinds = [
                {"category": c, "message": m, "count": n - since.get((c, m), 0), "first": self.first[(c, m)]}
                for (c, m), n in sorted(self.counts.items())
                if n > since.get((c, m), 0)
            ]
        return {"count": sum(k["count"] for k in kinds), "kinds": kinds}


_ACTIVE: list[WarningLog] = []  # the capture in force (captures nest into the outermost)


@contextmanager
def capture_warnings() -> Iterator[WarningLog]:
    """Record every warning raised inside (see the module docstring)."""
    if _ACTIVE:
        yield _ACTIVE[0]
        return
    wlog = WarningLog()
    with warnings.catch_warnings():  # the filters in force decide what is shown (each location once by default)
        warnings.showwarning = wlog.record
        _ACTIVE.append(wlog)
        try:
            yield wlog
        finally:
            _ACTIVE.remove(wlog)
