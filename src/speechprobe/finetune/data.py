"""What fine-tuning trains on: the run's clips (audio read back from the task sources), the run's own folds,
and a validation split carved from each training fold by group."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..config import RunConfig
from ..errors import SpeechprobeError
from ..features.engine import model_input
from ..features.extract import ClipMeta


def task_audio(cfg: RunConfig, clips: dict[str, list[ClipMeta]], rate: int, limit: float | None) -> dict[str, list]:
    """Each task's clips as the model takes them (resampled to ``rate``, cut to ``limit`` s), in the run's clip
    order, read back from the run's task sources by content hash."""
    from ..cache import using_cache
    from ..pipeline import open_tasks

    out: dict[str, list] = {}
    with using_cache(cfg.compute.cache) as root:
        for rec in open_tasks(cfg, root):
            metas = clips.get(rec.task.name)
            if metas is None:
                continue
            wanted = {c.content_hash for c in metas}
            audio = {}
            for clip in rec.source:
                if clip.content_hash in wanted and clip.content_hash not in audio:
                    audio[clip.content_hash] = model_input(clip.audio, clip.sample_rate, rate, limit)
            missing = [c.id for c in metas if c.content_hash not in audio]
            if missing:
                raise SpeechprobeError(
                    f"task {rec.task.name}: {len(missing)} clips of the run (e.g. {missing[0]}) are no longer in its "
                    "source; rerun the extraction"
                )
            out[rec.task.name] = [audio[c.content_hash] for c in metas]
    return out


def validation_split(
    train: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``train`` split into (fit, validation) item indices: about ``fraction`` held out, stratified, whole groups
    on one side when there are groups. Only training items are ever split: the test fold is never seen."""
    y = np.asarray(labels)[train]
    g = None if groups is None else np.asarray(groups)[train]
    n_splits = max(2, round(1 / fraction))
    if g is not None:
        n_splits = min(n_splits, len(np.unique(g)))
        if n_splits < 2:
            raise SpeechprobeError("a training fold holds a single group; no validation split by group is possible")
        splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
    else:
        n_splits = min(n_splits, len(y))
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class with fewer members than splits: sklearn warns, the split stands
        warnings.simplefilter("ignore", UserWarning)
        fit, val = next(splitter.split(np.zeros(len(y)), y, g))
    return train[fit], train[val]


def class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights ``n / (C · n_c)`` of the training codes (a class absent from them weighs 0)."""
    counts = np.bincount(codes, minlength=n_classes).astype(float)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, len(codes) / (n_classes * counts), 0.0)
    return w.astype(np.float32)


def shuffled(codes: np.ndarray, items: Sequence[int], seed: int) -> np.ndarray:
    """``codes`` with the labels of ``items`` permuted among them (the shuffled-label control)."""
    out = codes.copy()
    idx = np.asarray(items)
    out[idx] = np.random.default_rng(seed).permutation(codes[idx])
    return out
