"""A model that fails on purpose inside a Ray actor, for the Ray engine tests (extraction and zero-shot).

Ray workers cannot import test helpers: the ``ray_session`` fixture ships this module by value.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any


class Faulty:
    """``inner`` whose method ``method`` stops the run (an error) on call ``stop_at``, or kills its worker
    process (``os._exit``) the first time any worker gets there while the file ``crash_marker`` exists;
    ``delay`` seconds of sleep and a ``warn`` warning per call make a slow, talkative model."""

    def __init__(
        self,
        inner: Any,
        method: str,
        stop_at: int | None = None,
        crash_marker: str | None = None,
        delay: float = 0.0,
        warn: str | None = None,
    ) -> None:
        self.inner, self.method, self.stop_at, self.crash_marker, self.calls = inner, method, stop_at, crash_marker, 0
        self.delay, self.warn = delay, warn

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        return self._faulty(attr) if name == self.method else attr

    def _faulty(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.stop_at is not None and self.calls == self.stop_at:
                raise RuntimeError("stopped mid-run")
            if self.crash_marker:
                try:
                    os.unlink(self.crash_marker)  # the first process to get here dies, once
                except FileNotFoundError:
                    pass
                else:
                    os._exit(1)
            if self.warn:
                warnings.warn(self.warn, UserWarning, stacklevel=2)
            time.sleep(self.delay)
            return fn(*args, **kwargs)

        return call


def faulty(
    load: Callable[..., Any],
    method: str,
    stop_at: int | None = None,
    crash_marker: str | None = None,
    delay: float = 0.0,
    warn: str | None = None,
    **kwargs: Any,
) -> Faulty:
    """A ``Recipe`` factory: ``load(**kwargs)`` made faulty (``functools.partial(faulty, load, method, ...)``)."""
    return Faulty(load(**kwargs), method, stop_at, crash_marker, delay, warn)
