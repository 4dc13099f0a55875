"""Batch clips by total (padded) audio duration rather than by count."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Default padded seconds per batch. On a CPU, larger batches gain nothing (see benchmarks/README.md).
# On a GPU, 960 s (32 Whisper windows) reached 521x real time with whisper-large-v3 in bf16 on an
# H200, against 408x at 120 s; with 2-5 s clips in the trimmed window, 3717x against 3061x.
DEFAULT_BATCH_SECONDS = {"cpu": 120.0, "cuda": 960.0}


def default_batch_seconds(device: str) -> float:
    """``--max-batch-seconds`` when none is given: by device type (``cuda:1`` counts as ``cuda``)."""
    return DEFAULT_BATCH_SECONDS.get(str(device).split(":")[0], DEFAULT_BATCH_SECONDS["cpu"])


def duration_batches(
    items: Iterable[T],
    duration: Callable[[T], float],
    max_batch_seconds: float,
    buffer_size: int = 512,
    max_batch_items: int = 256,
    max_padding: float = 0.25,
) -> Iterator[list[T]]:
    """Yield batches whose padded cost ``len(batch) * max(duration)`` stays within budget.

    Items are read ``buffer_size`` at a time and sorted by decreasing duration inside the buffer
    (length bucketing), so memory stays bounded. A batch also closes when the next item would be
    padded by more than ``max_padding`` of the batch's longest item. An item longer than the budget
    forms a batch of its own.
    """
    buf: list[T] = []
    for item in items:
        buf.append(item)
        if len(buf) >= buffer_size:
            yield from _pack(buf, duration, max_batch_seconds, max_batch_items, max_padding)
            buf = []
    if buf:
        yield from _pack(buf, duration, max_batch_seconds, max_batch_items, max_padding)


def _pack(
    buf: list[T], duration: Callable[[T], float], budget: float, max_items: int, max_padding: float
) -> Iterator[list[T]]:
    buf = sorted(buf, key=duration, reverse=True)
    batch: list[T] = []
    longest = 0.0
    for item in buf:
        d = duration(item)
        longest_if = max(longest, d)
        too_padded = d < (1.0 - max_padding) * longest_if
        if batch and (longest_if * (len(batch) + 1) > budget or len(batch) >= max_items or too_padded):
            yield batch
            batch, longest_if = [], d
        batch.append(item)
        longest = longest_if
    if batch:
        yield batch
