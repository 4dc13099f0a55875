"""Bounded, order-preserving parallel map for I/O and GIL-releasing work (decoding, resampling)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, lookahead: int = 8) -> Iterator[R]:
    """Yield ``fn(item)`` in input order, running up to ``workers`` at once and at most
    ``lookahead`` results ahead, so memory stays bounded on long streams. Exceptions propagate
    in order. ``workers <= 1`` runs inline.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= lookahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
