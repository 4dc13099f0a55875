"""The extraction driver: stream clips through an engine in duration batches into the feature store.

One driver for every engine (:mod:`.engine`: this process, or Ray actors): it reads and hashes the
clips, forms the batches, skips what is stored, checks the features and stores them, shows progress,
counts warnings and keeps the accounts. An engine only runs the forward, wherever it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..data.clip import Clip, native_facts
from ..errors import SpeechprobeError
from ..memory import trim_heap
from ..models.base import ModelAdapter
from ..models.pooling import split_pooled, variants_spec
from ..parallel import ordered_map, tally_warnings
from .batching import duration_batches
from .engine import PREPARE_WORKERS, Batch, Engine, as_engine
from .store import FeatureSpace, put_many

log = logging.getLogger("speechprobe")
COST_CHUNK = 256  # clips whose batching cost is asked of the engine in one call (one round trip on Ray)


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
    """Clips in source order, what was computed vs. reused from the store, and the warnings raised.

    ``warnings``: how often each kind of warning was raised while extracting (key: category and
    first line of the message), by this process, its worker threads and the engine's workers; each
    kind is also shown once, as the extraction ends.
    """

    clips: list[ClipMeta] = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    truncated: list[str] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)


@dataclass
class ClipItem:
    """A clip on its way to the model, with its metadata (and its batching cost, once known)."""

    meta: ClipMeta
    clip: Clip
    cost: float = 0.0


@dataclass
class _Slot:
    """The driver's side of a batch in flight: its unique clips, which of them to store (and in which of the
    poolings' spaces), its size."""

    unique: list[ClipItem]
    store: dict[int, list[str]]
    size: int


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


def source_size(clips: Iterable[Clip]) -> int | None:
    """How many rows a source lists (its length, or a hub split's row count), or None for a stream."""
    try:
        return len(clips)  # type: ignore[arg-type]
    except TypeError:
        rows = getattr(clips, "num_rows", None)
        return int(rows) if rows is not None else None


class _Progress:
    """Clips done (stored, reused, or skipped by the source) out of the source's rows."""

    def __init__(self, clips: Iterable[Clip], enabled: bool, desc: str) -> None:
        self.skipped = getattr(clips, "skipped", None)
        self.bar = tqdm(desc=desc, total=source_size(clips), unit="clip", disable=not enabled, leave=False)
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n
        now = self.done + (len(self.skipped) if self.skipped is not None else 0)
        self.bar.update(now - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _check_finite(feats: np.ndarray, items: list[ClipItem], model: str) -> None:
    """Never store a silently wrong number: name the clip whose features are NaN/Inf."""
    bad = ~np.isfinite(feats).reshape(len(feats), -1).all(axis=1)
    if bad.any():
        ids = ", ".join(p.meta.id for p, b in zip(items, bad) if b)
        raise SpeechprobeError(f"{model} produced NaN/Inf features for {ids}; try --dtype float32 or report it")


def _check_space(engine: Engine, space: FeatureSpace) -> None:
    """The feature space must be the engine's own: the weights and options it was keyed on."""
    weights = space.meta.get("weights")
    options = space.meta.get("options") or {}
    mine = engine.options()
    clash = {k: v for k, v in mine.items() if k in options and options[k] != v}
    if (weights and weights != engine.info.revision) or clash:
        raise SpeechprobeError(
            f"{space.root}: this feature space holds weights {weights} {options}, but the model "
            f"loaded {engine.info.revision} {mine}"
        )


def _costed(engine: Engine, items: Iterator[ClipItem]) -> Iterator[ClipItem]:
    """Items with their batching cost, asked of the engine ``COST_CHUNK`` at a time."""
    chunk: list[ClipItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= COST_CHUNK:
            yield from _with_costs(engine, chunk)
            chunk = []
    if chunk:
        yield from _with_costs(engine, chunk)


def _with_costs(engine: Engine, chunk: list[ClipItem]) -> list[ClipItem]:
    for p, c in zip(chunk, engine.costs([p.meta.duration for p in chunk])):
        p.cost = c
    return chunk


def extract(
    model: ModelAdapter | Engine,
    clips: Iterable[Clip],
    space: FeatureSpace | Mapping[str, FeatureSpace],
    pooling: str = "mean",
    max_batch_seconds: float = 120.0,
    progress: bool = False,
    desc: str = "extract",
) -> ExtractReport:
    """Store pooled features of every clip not yet in ``space``; returns clip metadata in order.

    ``model`` is an engine (:class:`~speechprobe.features.engine.LocalEngine`,
    :class:`~speechprobe.features.ray_engine.RayEngine`) or an adapter, run in this process.
    Batches are formed over *all* clips, stored or not, so their composition never depends on what
    an earlier, interrupted run managed to store: a batch whose clips are all stored is skipped, and
    a batch with any clip missing (the one in flight when a run died) is recomputed whole, writing
    only the missing clips. Features are therefore bit-identical to an uninterrupted run, and no
    stored clip outside the in-flight batch is ever recomputed. A clip whose batch is still in
    flight counts as stored for later batches (engines draw batches ahead).

    ``space`` may map several poolings to their spaces (``pooling`` is then unused): one forward of a batch
    (:func:`~speechprobe.models.pooling.variants_spec`, for adapters that ``pools_frames``) fills each space
    that lacks a clip; a clip counts as stored when every space holds it.
    """
    engine = as_engine(model)
    spaces = dict(space) if isinstance(space, Mapping) else {pooling: space}
    for each in spaces.values():
        _check_space(engine, each)
    spec = variants_spec(list(spaces)) if len(spaces) > 1 else pooling
    trim_heap()
    report = ExtractReport()
    pending: set[str] = set()  # content hashes whose batch is in flight
    bar = _Progress(clips, progress, desc)

    def planned() -> Iterator[Batch]:
        items = _costed(engine, stream_clips(clips, report, engine.max_seconds(), engine.name))
        for batch in duration_batches(items, lambda p: p.cost, max_batch_seconds):
            unique = list({p.meta.content_hash: p for p in batch}.values())
            store = {}
            for i, p in enumerate(unique):
                h = p.meta.content_hash
                missing = [] if h in pending else [name for name, sp in spaces.items() if not sp.has(h)]
                if missing:
                    store[i] = missing
            report.computed += len(store)
            report.reused += len(batch) - len(store)
            if not store:
                bar.advance(len(batch))
                continue
            pending.update(unique[i].meta.content_hash for i in store)
            raw = [(p.clip.audio, p.clip.sample_rate) for p in unique]
            yield Batch(raw, [native_facts(p.clip) for p in unique], _Slot(unique, store, len(batch)))

    try:
        with tally_warnings() as counts:
            for batch, feats in engine.forward_batches(planned(), spec):
                slot: _Slot = batch.tag
                _check_finite(feats, slot.unique, engine.name)
                parts = split_pooled(feats, list(spaces)) if len(spaces) > 1 else {pooling: feats}
                done = [slot.unique[i].meta.content_hash for i in slot.store]
                put_many(
                    [
                        (spaces[name], h, parts[name][i])
                        for (i, missing), h in zip(slot.store.items(), done)
                        for name in missing
                    ]
                )
                pending.difference_update(done)
                bar.advance(slot.size)
    finally:
        bar.close()
    report.warnings = dict(counts)
    return report
