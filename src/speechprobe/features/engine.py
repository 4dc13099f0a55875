"""Where a model's forward runs: the engine interface, and the local engine (this process).

The extraction driver (:func:`speechprobe.features.extract.extract`) reads the clips, forms the
batches, skips what is stored, checks and stores the features; an engine only turns batches into
features, in this process (:class:`LocalEngine`) or on Ray actors
(:class:`speechprobe.features.ray_engine.RayEngine`, whose actors each run a :class:`LocalEngine`).
Both run the same code on a batch: :func:`model_input` for each clip, then
:meth:`LocalEngine.forward`, so their features are bit-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..data.audio import resample
from ..memory import trim_heap
from ..models.base import AdapterInfo, Described, ModelAdapter
from ..parallel import Caught, call_captured, emit_all, ordered_map

log = logging.getLogger("speechprobe")
PREPARE_WORKERS = 2  # threads that resample a batch's clips


@dataclass
class Batch:
    """One batch for an engine: each clip's audio at its own rate, its source facts; ``tag`` is the driver's."""

    raw: list[tuple[np.ndarray, int]]
    facts: list[Mapping[str, Any]]
    tag: Any = None


class Engine(Protocol):
    """What the driver needs of an engine: the adapter's identity, batching costs and a forward over batches."""

    info: AdapterInfo

    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    def options(self) -> dict[str, object]: ...

    def max_seconds(self) -> float | None: ...

    @property
    def pools_frames(self) -> bool:
        """The adapter's ``pools_frames``: whether one forward can give several poolings."""
        ...

    def costs(self, durations: Sequence[float]) -> list[float]:
        """Each clip's batching cost: the seconds of input the model processes for it."""
        ...

    def forward_batches(self, batches: Iterable[Batch], pooling: str) -> Iterator[tuple[Batch, np.ndarray]]:
        """``(batch, features of every clip in it)``, in any order; draws batches lazily, at most a few ahead."""
        ...

    def close(self) -> None: ...


def model_input(audio: np.ndarray, sample_rate: int, rate: int, limit: float | None) -> np.ndarray:
    """A clip as the model takes it: resampled to ``rate`` and cut to ``limit`` seconds."""
    audio = resample(audio, sample_rate, rate)
    return audio[: int(limit * rate)] if limit is not None else audio


def model_inputs(raw: Sequence[tuple[np.ndarray, int]], rate: int, limit: float | None) -> list[np.ndarray]:
    """:func:`model_input` of each clip, in worker threads."""
    return list(ordered_map(lambda r: model_input(r[0], r[1], rate, limit), raw, workers=PREPARE_WORKERS))


def is_oom(err: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors raised by torch."""
    name = type(err).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(err).lower()


class LocalEngine(Described):
    """An adapter's forward in this process, with out-of-memory halving and input prefetch.

    After an out-of-memory error the engine remembers the batch size it fell back to
    (``batch_cap``), and later batches are cut to that size up front instead of failing first at full
    size each time. While a batch runs, the next one's inputs are resampled in a background thread
    (on a GPU: host work overlapped with device work); results are those of running one at a time.
    """

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter
        self.info: AdapterInfo = adapter.info
        self.batch_cap: int | None = None

    def options(self) -> dict[str, object]:
        return self.adapter.options()

    def max_seconds(self) -> float | None:
        return self.adapter.max_seconds()

    @property
    def pools_frames(self) -> bool:
        return self.adapter.pools_frames

    def costs(self, durations: Sequence[float]) -> list[float]:
        limit = self.max_seconds()
        return [self.adapter.window_seconds(min(d, limit or float("inf"))) for d in durations]

    def inputs(self, raw: Sequence[tuple[np.ndarray, int]]) -> list[np.ndarray]:
        return model_inputs(raw, self.sample_rate, self.max_seconds())

    def forward(self, audios: Sequence[np.ndarray], facts: Sequence[Mapping[str, Any]], pooling: str) -> np.ndarray:
        """``adapter.forward_clips`` of a batch; on out-of-memory it is halved and retried, down to single clips."""
        cap = self.batch_cap
        if cap is not None and len(audios) > cap:
            parts = range(0, len(audios), cap)
            return np.concatenate([self._halving(audios[i : i + cap], facts[i : i + cap], pooling) for i in parts])
        return self._halving(audios, facts, pooling)

    def _halving(self, audios: Sequence[np.ndarray], facts: Sequence[Mapping[str, Any]], pooling: str) -> np.ndarray:
        try:
            return self.adapter.forward_clips(audios, facts, pooling)
        except (RuntimeError, MemoryError) as err:
            if len(audios) == 1 or not (isinstance(err, MemoryError) or is_oom(err)):
                raise
        mid = len(audios) // 2
        cap = self.batch_cap  # the larger half is what the next batches try
        self.batch_cap = len(audios) - mid if cap is None else min(cap, len(audios) - mid)
        log.warning(
            "out of memory on a batch of %d clips; halving (later batches: at most %d)", len(audios), self.batch_cap
        )
        _free_accelerator_cache()
        return np.concatenate([self.forward(audios[s], facts[s], pooling) for s in (slice(mid), slice(mid, None))])

    def forward_batches(self, batches: Iterable[Batch], pooling: str) -> Iterator[tuple[Batch, np.ndarray]]:
        """Each batch's features in order; the next batch is drawn, and its inputs prepared, while one runs."""
        source = iter(batches)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="speechprobe-prefetch") as prefetch:

            def ahead() -> tuple[Batch, Future[tuple[list[np.ndarray], list[Caught]]]] | None:
                batch = next(source, None)
                return None if batch is None else (batch, prefetch.submit(call_captured, self.inputs, batch.raw))

            nxt = ahead()
            while nxt is not None:
                batch, ready = nxt
                audios, caught = ready.result()
                emit_all(caught)  # the prefetch thread's warnings, on this (the driver's) thread
                nxt = ahead()
                feats = self.forward(audios, batch.facts, pooling)
                trim_heap()
                yield batch, feats

    def close(self) -> None:
        """Nothing to release (the adapter belongs to the caller); for symmetry with the Ray engine."""

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_engine(model: ModelAdapter | Engine) -> Engine:
    """An engine as is; an adapter in a fresh :class:`LocalEngine`."""
    return model if hasattr(model, "forward_batches") else LocalEngine(model)


def _free_accelerator_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
