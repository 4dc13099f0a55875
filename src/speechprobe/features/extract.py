"""Extraction: stream clips through an adapter in duration batches into the feature store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..data.audio import resample
from ..data.clip import Clip
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
class _Pending:
    meta: ClipMeta
    audio: np.ndarray | None  # None: already stored
    truncated: bool = False


def is_oom(err: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors raised by torch."""
    name = type(err).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(err).lower()


def forward_halving(adapter: ModelAdapter, audios: Sequence[np.ndarray], pooling: str) -> np.ndarray:
    """Run a batch; on out-of-memory split it in halves and retry, down to single clips."""
    try:
        return adapter.forward(audios, pooling)
    except (RuntimeError, MemoryError) as err:
        if len(audios) == 1 or not (isinstance(err, MemoryError) or is_oom(err)):
            raise
        log.warning("out of memory on a batch of %d clips; halving", len(audios))
        _free_accelerator_cache()
        mid = len(audios) // 2
        return np.concatenate(
            [forward_halving(adapter, audios[:mid], pooling), forward_halving(adapter, audios[mid:], pooling)]
        )


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

    Clips already stored are not recomputed; each new clip is written as soon as its batch is done,
    so an interrupted extraction resumes where it stopped.
    """
    report = ExtractReport()
    limit = adapter.max_seconds()
    window = adapter.window_seconds

    def prepare(clip: Clip) -> _Pending:
        """Hash, and for clips not yet stored resample and cut to the model's window (in a worker)."""
        meta = ClipMeta(clip.id, clip.label, clip.group, clip.duration, clip.content_hash)
        if space.has(meta.content_hash):
            return _Pending(meta, None)
        audio = resample(clip.audio, clip.sample_rate, adapter.sample_rate)
        cut = limit is not None and len(audio) > limit * adapter.sample_rate
        return _Pending(meta, audio[: int(limit * adapter.sample_rate)] if cut else audio, cut)

    def pending() -> Iterable[_Pending]:
        for p in ordered_map(prepare, clips, workers=PREPARE_WORKERS):
            report.clips.append(p.meta)
            if p.audio is None:
                report.reused += 1
                continue
            if p.truncated:
                report.truncated.append(p.meta.id)
                log.warning("%s: %.1f s is longer than %s's %.0f s window; truncated", p.meta.id, p.meta.duration, adapter.name, limit)
            yield p

    bar = tqdm(desc=desc, unit="clip", disable=not progress, leave=False)
    seen: set[str] = set()
    for batch in duration_batches(pending(), lambda p: window(len(p.audio) / adapter.sample_rate), max_batch_seconds):
        todo = list({p.meta.content_hash: p for p in batch if p.meta.content_hash not in seen}.values())
        if todo:
            feats = forward_halving(adapter, [p.audio for p in todo], pooling)
            for p, f in zip(todo, feats):
                space.put(p.meta.content_hash, f)
                seen.add(p.meta.content_hash)
            report.computed += len(todo)
        bar.update(len(batch))
    bar.close()
    return report
