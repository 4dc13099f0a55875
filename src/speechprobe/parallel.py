"""Bounded, order-preserving parallel map, and warnings captured per thread.

``warnings.catch_warnings`` swaps process-wide state (the filter list, the display hook): entered
and left by several threads at once, one thread's exit restores another's settings, so warnings
leak through or vanish. Here each thread records its own warnings instead (:func:`captured_warnings`,
through one process-wide display hook that routes a warning to the innermost capture open on the
thread that raised it), worker results carry their warnings back, and the consuming thread
re-emits them, where its own filters and captures apply (:func:`ordered_map`, :func:`tally_warnings`).
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Caught:
    """One warning, recorded where it was raised; picklable, so it can travel back from a worker process."""

    category: type[Warning]
    message: str
    filename: str
    lineno: int

    @property
    def key(self) -> str:
        """How warnings are counted: the category and the message's first line."""
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.category.__name__}: {first}"

    def emit(self) -> None:
        """Raise it again on this thread, at its original location (this thread's filters decide)."""
        try:
            warnings.warn_explicit(self.message, self.category, self.filename, self.lineno)
        except TypeError:  # a category that cannot be built from a message alone
            warnings.warn_explicit(f"{self.category.__name__}: {self.message}", UserWarning, self.filename, self.lineno)


_local = threading.local()
_install_lock = threading.Lock()
_original_showwarnmsg: Callable[[Any], None] | None = None


def _route(msg: Any) -> None:
    """The process-wide display hook: to this thread's innermost capture, else the usual display."""
    stack = getattr(_local, "stack", None)
    if stack:
        text = str(msg.message)
        stack[-1].append(Caught(msg.category, text, str(msg.filename), int(msg.lineno or 0)))
        return
    assert _original_showwarnmsg is not None
    _original_showwarnmsg(msg)


def _install() -> None:
    """Put :func:`_route` in front of ``warnings._showwarnmsg`` once per process.

    ``_showwarnmsg`` is the one function both the C and the Python warning machinery call to show a
    warning, and the one ``catch_warnings`` leaves alone (it swaps ``showwarning`` and
    ``_showwarnmsg_impl``), so the hook survives any ``catch_warnings`` on any thread. With no
    capture open on a thread it passes every warning on unchanged.
    """
    global _original_showwarnmsg
    with _install_lock:
        if _original_showwarnmsg is None:
            _original_showwarnmsg = warnings._showwarnmsg
            warnings._showwarnmsg = _route


@contextmanager
def captured_warnings() -> Iterator[list[Caught]]:
    """Record the warnings raised on this thread (only) into the list yielded; nothing is shown.

    Thread-safe, unlike ``catch_warnings``: no filter or hook changes hands. Which warnings reach the
    list is up to the process's filters (Python's default shows a warning once per code location;
    :func:`tally_warnings` sets ``always`` on the driver thread to see every occurrence).
    """
    _install()
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    caught: list[Caught] = []
    stack.append(caught)
    try:
        yield caught
    finally:
        stack.pop()


def call_captured(fn: Callable[..., R], *args: Any, **kwargs: Any) -> tuple[R, list[Caught]]:
    """``fn(*args, **kwargs)`` and the warnings it raised on this thread (for a worker to hand back)."""
    with captured_warnings() as caught:
        return fn(*args, **kwargs), caught


def emit_all(caught: Iterable[Caught]) -> None:
    """Re-emit a worker's warnings on the calling thread, in order."""
    for c in caught:
        c.emit()


@contextmanager
def tally_warnings() -> Iterator[Counter[str]]:
    """Count every warning raised on this thread, including those workers hand back; show each kind once.

    For a driver thread that owns a unit of work (an extraction): while open, every warning the
    process's filters would show is recorded at each occurrence (their "once per location" actions
    become ``always``; ignored ones stay ignored; worker threads see the same filters) and nothing
    is displayed. On exit the counter yielded holds the counts (key: :attr:`Caught.key`)
    and one warning of each kind is re-emitted, so the caller's own filters, captures and
    display see it once. Only the thread that opens it may enter or leave ``catch_warnings`` here.
    """
    counts: Counter[str] = Counter()
    first: dict[str, Caught] = {}
    try:
        with every_occurrence(), captured_warnings() as caught:
            try:
                yield counts
            finally:
                for c in caught:
                    counts[c.key] += 1
                    first.setdefault(c.key, c)
    finally:
        emit_all(first.values())


@contextmanager
def every_occurrence() -> Iterator[None]:
    """While open, what the process's filters would show once (per location) is shown at every occurrence.

    Ignored warnings stay ignored, errors stay errors. Only for the thread that owns the process's
    filters (an extraction's driver, a Ray worker's task): it enters ``catch_warnings``. The last
    ``filterwarnings`` (what no filter matches: Python's default action is once per location) also
    makes the warning machinery re-read the filters.
    """
    with warnings.catch_warnings():
        once = ("default", "module", "once")
        warnings.filters[:] = [("always" if f[0] in once else f[0], *f[1:]) for f in warnings.filters]
        warnings.filterwarnings("always", append=True)
        yield


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, lookahead: int = 8) -> Iterator[R]:
    """Yield ``fn(item)`` in input order, running up to ``workers`` at once and at most
    ``lookahead`` results ahead, so memory stays bounded on long streams. Exceptions propagate
    in order. ``workers <= 1`` runs inline. Warnings raised in a worker are re-emitted on the
    consuming thread just before its result is yielded.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[tuple[R, list[Caught]]]] = deque()
        for item in items:
            pending.append(pool.submit(call_captured, fn, item))
            if len(pending) >= lookahead:
                yield _collect(pending.popleft())
        while pending:
            yield _collect(pending.popleft())


def _collect(future: Future[tuple[R, list[Caught]]]) -> R:
    value, caught = future.result()
    emit_all(caught)
    return value


RESIDENT_BYTES = 4 << 30  # what a worker that keeps models between jobs may grow past its first job


def keep_resident() -> None:
    """Called in a joblib (loky) worker that keeps models loaded between jobs: loky shuts a worker down once its
    memory has grown 300 MB past what it held after its first job (its guard against leaks), so a worker whose
    first job was light was restarted after loading a model, and its successor imported torch and loaded the
    models again ("A worker stopped while some jobs were given to the executor"). The guard is raised to
    :data:`RESIDENT_BYTES` in this process (loky reads it after every job)."""
    from joblib.externals.loky import process_executor

    limit = getattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", 0)
    process_executor._MAX_MEMORY_LEAK_SIZE = max(limit, RESIDENT_BYTES)


def longest_first(jobs: Sequence[Any], costs: Sequence[float], n_jobs: int) -> list[Any]:
    """joblib's ``Parallel(n_jobs)`` over ``jobs`` (its delayed calls) dispatched longest first by their estimated
    ``costs`` (the longest-processing-time rule: a few jobs of unequal size leave no worker alone with a long one
    at the end); the results in the jobs' order."""
    from joblib import Parallel

    order = sorted(range(len(jobs)), key=lambda k: -costs[k])
    out: list[Any] = [None] * len(jobs)
    for k, result in zip(order, Parallel(n_jobs=n_jobs)(jobs[k] for k in order)):
        out[k] = result
    return out


@contextmanager
def single_threaded() -> Iterator[None]:
    """One BLAS/OpenMP thread and one torch CPU thread for the duration (restored afterwards).

    For many small matrix problems (per-fold erasers, batched probe heads): on a loaded 2-core machine a
    50 x 50 eigendecomposition took 48 ms with torch's 2 threads against 4 ms with one; one thread also
    sums in a fixed order, so the numbers do not depend on the machine.
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(previous)
