"""Nuisance baselines: feature sets that carry no voice content, as one-layer models.

A task that one of them solves is solvable from how the clips were recorded or cut, not from the
voice; the report says so when one reaches most of a model's score. Each is one layer (layer 0):

- ``duration``: the clip's length in seconds (1 number);
- ``channel``: the source file's native sample rate, channel count, clipped fraction and DC offset
  (4 numbers; ``data.clip.native_facts``, recorded by the file readers before mixdown and
  resampling, else taken from the clip's own audio);
- ``loudness``: frame RMS level in dBFS (25 ms frames, 10 ms hop) pooled over time as ``--pooling``
  says (the mean; with ``mean+std`` also its spread), then the clip's overall RMS and peak level in
  dBFS (3 numbers; 4 with ``mean+std``).

``duration`` and ``channel`` are one value per clip, so ``--pooling`` does not change them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import SpeechprobeError
from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .pooling import pool_frames

SAMPLE_RATE = 16000
FRAME, HOP = 400, 160  # 25 ms frames, 10 ms hop at 16 kHz
FLOOR_DB = -120.0  # level of digital silence
_VERSION = "1"  # bump when a recipe changes (part of the cache key)


def _db(x: np.ndarray | float) -> np.ndarray:
    return 20 * np.log10(np.maximum(x, 10 ** (FLOOR_DB / 20)))


def duration_features(y: np.ndarray, facts: Mapping[str, Any], pooling: str) -> np.ndarray:
    """Seconds of audio."""
    return np.array([len(y) / SAMPLE_RATE])


def channel_features(y: np.ndarray, facts: Mapping[str, Any], pooling: str) -> np.ndarray:
    """Native sample rate (Hz), channel count, clipped fraction and DC offset of the source."""
    return np.array([facts[k] for k in ("sample_rate", "channels", "clipped_fraction", "dc_offset")], dtype=float)


def loudness_features(y: np.ndarray, facts: Mapping[str, Any], pooling: str) -> np.ndarray:
    """Frame RMS level (dBFS) pooled over time, then the clip's RMS and peak level (dBFS)."""
    y = np.asarray(y, dtype=np.float64)
    padded = np.pad(y, (0, max(0, FRAME - len(y))))
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::HOP]
    frame_db = _db(np.sqrt(np.mean(frames**2, axis=1)))[None, :]
    rms = np.sqrt(np.mean(y**2)) if len(y) else 0.0
    peak = np.max(np.abs(y)) if len(y) else 0.0
    return np.concatenate([pool_frames(frame_db, pooling), _db(np.array([rms, peak]))])


RECIPES: dict[str, Callable[[np.ndarray, Mapping[str, Any], str], np.ndarray]] = {
    "duration": duration_features,
    "channel": channel_features,
    "loudness": loudness_features,
}


class NuisanceAdapter(ModelAdapter):
    """A nuisance recipe as a one-layer model; it reads each clip's source facts (``forward_clips``)."""

    def __init__(self, recipe: str) -> None:
        self.recipe = RECIPES[recipe]
        probe = {"sample_rate": SAMPLE_RATE, "channels": 1, "clipped_fraction": 0.0, "dc_offset": 0.0}
        dim = self.forward_clips([np.full(SAMPLE_RATE, 1e-3, dtype=np.float32)], [probe]).shape[-1]
        key = f"nuisance:{recipe}:{_VERSION}"
        self.info = AdapterInfo.of_recipe(recipe, "nuisance", "speechprobe", key, dim, SAMPLE_RATE / HOP)

    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        raise SpeechprobeError(f"the {self.name} baseline needs each clip's source facts: call forward_clips")

    def forward_clips(
        self, batch: Sequence[np.ndarray], facts: Sequence[Mapping[str, Any]], pooling: str = "mean"
    ) -> np.ndarray:
        out = [self.recipe(np.asarray(y, dtype=np.float32), f, pooling) for y, f in zip(batch, facts, strict=True)]
        return np.stack(out)[:, None, :].astype(np.float32)


def _load(ctx: LoadContext) -> NuisanceAdapter:
    return NuisanceAdapter(ctx.name or "duration")


def _checkpoint(name: str, dims: int, nuisance: str) -> Checkpoint:
    return Checkpoint(name, num_layers=1, hidden_size=dims, packaged=True, baseline=True, nuisance=nuisance)


FAMILY = Family(
    "nuisance",
    _load,
    title="nuisance baselines",
    checkpoints=(
        _checkpoint("duration", 1, "clip duration"),
        _checkpoint("channel", 4, "the recording channel"),  # sample rate, channels, clipping, DC offset
        _checkpoint("loudness", 3, "loudness"),
    ),
    layer0="the recipe's features of the whole clip (the only layer)",
    source="speechprobe",
    has_weights=False,
)
FAMILIES = (FAMILY,)
