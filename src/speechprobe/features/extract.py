"""Extraction: stream clips through an adapter in duration batches into the feature store."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..data.audio import resample
from ..data.clip import Clip, native_facts
from ..errors import SpeechprobeError
from ..memory import trim_heap
from ..models.base import ModelAdapter
from ..parallel import ordered_map
from .batching import duration_batches
from .store import FeatureSpace

log = logging.getLogger("speechprobe")
PREPARE_WORKERS = 2


@dataclass(frozen=True)
class ClipMeta:
    """What the probes need of a clip once its features are stored."""

    id: str
    label: str
    group: str | None
    duration: float
    content_hash: str


@dataclass
class ExtractReport:
    """Clips in source order, and what was computed vs. reused from the store."""

    clips: list[ClipMeta] = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    truncated: list[str] = field(default_factory=list)


@dataclass
class ClipItem:
    """A clip on its way to the model, with its metadata (and its batching cost, once known)."""

    meta: ClipMeta
    clip: Clip
    cost: float = 0.0


def stream_clips(clips: Iterable[Clip], report: ExtractReport, limit: float | None, model: str) -> Iterator[ClipItem]:
    """Hash clips in worker threads, record them (and any longer than ``limit`` s) in ``report``."""

    def read(clip: Clip) -> ClipItem:
        return ClipItem(ClipMeta(clip.id, clip.label, clip.group, clip.duration, clip.content_hash), clip)

    for item in ordered_map(read, clips, workers=PREPARE_WORKERS):
        report.clips.append(item.meta)
        if limit is not None and item.meta.duration > limit:
            report.truncated.append(item.meta.id)
            log.warning(
                "%s: %.1f s is longer than %s's %.0f s window; truncated",
                item.meta.id,
                item.meta.duration,
                model,
                limit,
            )
        yield item


def is_oom(err: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors raised by torch."""
    name = type(err).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(err).lower()


def forward_halving(
    adapter: ModelAdapter, audios: Sequence[np.ndarray], pooling: str, facts: Sequence[dict] | None = None
) -> np.ndarray:
    """Run a batch (``adapter.forward_clips`` with each clip's source ``facts``, or ``forward`` without);
    on out-of-memory split it in halves and retry, down to single clips.

    After an out-of-memory error the adapter remembers the batch size it fell back to
    (``adapter.oom_batch_cap``), and later batches are cut to that size up front instead of failing
    first at full size each time. A cut that still runs out of memory is halved again, lowering the cap.
    """
    cap = adapter.oom_batch_cap
    if cap is not None and len(audios) > cap:
        cuts = range(0, len(audios), cap)
        return np.concatenate([_halving(adapter, audios[i : i + cap], pooling, _cut(facts, i, i + cap)) for i in cuts])
    return _halving(adapter, audios, pooling, facts)


def _cut(facts: Sequence[dict] | None, start: int, stop: int) -> Sequence[dict] | None:
    return None if facts is None else facts[start:stop]


def _halving(
    adapter: ModelAdapter, audios: Sequence[np.ndarray], pooling: str, facts: Sequence[dict] | None
) -> np.ndarray:
    try:
        if facts is None:
            return adapter.forward(audios, pooling)
        return adapter.forward_clips(audios, facts, pooling)
    except (RuntimeError, MemoryError) as err:
        if len(audios) == 1 or not (isinstance(err, MemoryError) or is_oom(err)):
            raise
        mid = len(audios) // 2
        cap = adapter.oom_batch_cap  # the larger half is what the next batches try
        adapter.oom_batch_cap = len(audios) - mid if cap is None else min(cap, len(audios) - mid)
        log.warning(
            "out of memory on a batch of %d clips; halving (later batches: at most %d)",
            len(audios),
            adapter.oom_batch_cap,
        )
        _free_accelerator_cache()
        halves = ((audios[:mid], _cut(facts, 0, mid)), (audios[mid:], _cut(facts, mid, len(audios))))
        return np.concatenate([forward_halving(adapter, half, pooling, f) for half, f in halves])


def _check_finite(feats: np.ndarray, batch: list[ClipItem], model: str) -> None:
    """Never store a silently wrong number: name the clip whose features are NaN/Inf."""
    bad = ~np.isfinite(feats).reshape(len(feats), -1).all(axis=1)
    if bad.any():
        ids = ", ".join(p.meta.id for p, b in zip(batch, bad) if b)
        raise SpeechprobeError(f"{model} produced NaN/Inf features for {ids}; try --dtype float32 or report it")


def _free_accelerator_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def extract(
    adapter: ModelAdapter,
    clips: Iterable[Clip],
    space: FeatureSpace,
    pooling: str = "mean",
    max_batch_seconds: float = 120.0,
    progress: bool = False,
    desc: str = "extract",
) -> ExtractReport:
    """Store pooled features of every clip not yet in ``space``; returns clip metadata in order.

    Batches are formed over *all* clips, stored or not, so their composition never depends on what
    an earlier, interrupted run managed to store: a batch whose clips are all stored is skipped, and
    a batch with any clip missing (the one in flight when a run died) is recomputed whole, writing
    only the missing clips. Features are therefore bit-identical to an uninterrupted run, and no
    stored clip outside the in-flight batch is ever recomputed.
    """
    trim_heap()
    report = ExtractReport()
    limit = adapter.max_seconds()
    rate = adapter.sample_rate

    def model_input(p: ClipItem) -> np.ndarray:
        """Resample to the model's rate and cut to its window."""
        audio = resample(p.clip.audio, p.clip.sample_rate, rate)
        return audio[: int(limit * rate)] if limit is not None else audio

    def cost(p: ClipItem) -> float:
        return adapter.window_seconds(min(p.meta.duration, limit or float("inf")))

    bar = tqdm(desc=desc, unit="clip", disable=not progress, leave=False)
    for batch in duration_batches(stream_clips(clips, report, limit, adapter.name), cost, max_batch_seconds):
        unique = list({p.meta.content_hash: p for p in batch}.values())
        missing = {p.meta.content_hash for p in unique if not space.has(p.meta.content_hash)}
        if missing:
            audios = list(ordered_map(model_input, unique, workers=PREPARE_WORKERS))
            feats = forward_halving(adapter, audios, pooling, [native_facts(p.clip) for p in unique])
            _check_finite(feats, unique, adapter.name)
            for p, f in zip(unique, feats):
                if p.meta.content_hash in missing:
                    space.put(p.meta.content_hash, f)
        report.computed += len(missing)
        report.reused += len(batch) - len(missing)
        bar.update(len(batch))
        trim_heap()
    bar.close()
    return report
