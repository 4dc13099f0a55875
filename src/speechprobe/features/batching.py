"""Batch clips by total (padded) audio duration rather than by count."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


def duration_batches(
    items: Iterable[T],
    duration: Callable[[T], float],
    max_batch_seconds: float,
    buffer_size: int = 512,
    max_batch_items: int = 256,
) -> Iterator[list[T]]:
    """Yield batches whose padded cost ``len(batch) * max(duration)`` stays within budget.

    Items are read ``buffer_size`` at a time and sorted by decreasing duration inside the buffer,
    so memory stays bounded while padding waste stays small. An item longer than the budget
    forms a batch of its own.
    """
    buf: list[T] = []
    for item in items:
        buf.append(item)
        if len(buf) >= buffer_size:
            yield from _pack(buf, duration, max_batch_seconds, max_batch_items)
            buf = []
    if buf:
        yield from _pack(buf, duration, max_batch_seconds, max_batch_items)


def _pack(buf: list[T], duration: Callable[[T], float], budget: float, max_items: int) -> Iterator[list[T]]:
    buf = sorted(buf, key=duration, reverse=True)
    batch: list[T] = []
    longest = 0.0
    for item in buf:
        d = duration(item)
        longest_if = max(longest, d)
        if batch and (longest_if * (len(batch) + 1) > budget or len(batch) >= max_items):
            yield batch
            batch, longest_if = [], d
        batch.append(item)
        longest = longest_if
    if batch:
        yield batch
