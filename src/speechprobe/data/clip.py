"""The Clip: one utterance flowing through the pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def audio_hash(audio: np.ndarray, sample_rate: int) -> str:
    """Content hash of a waveform (float32 mono) and its sample rate."""
    h = hashlib.sha256()
    h.update(str(int(sample_rate)).encode())
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    return h.hexdigest()


@dataclass
class Clip:
    """One utterance.

    ``audio`` is float32 mono at ``sample_rate``. ``id`` is stable: when the source gives none
    it is derived from the content. ``group`` is the speaker/voice/session used for grouped folds.
    """

    id: str
    audio: np.ndarray
    sample_rate: int
    label: str
    group: str | None = None
    instruction: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _hash: str | None = field(default=None, repr=False, compare=False)

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)

    @property
    def content_hash(self) -> str:
        """sha256 of the waveform; the feature cache is keyed on it."""
        if self._hash is None:
            self._hash = audio_hash(self.audio, self.sample_rate)
        return self._hash


FULL_SCALE = 32767 / 32768  # |sample| at or above this is clipped (the largest 16-bit PCM value, as float)


def native_facts(clip: Clip) -> dict[str, Any]:
    """What the source file said about a clip before it became float32 mono at its rate.

    ``sample_rate``, ``channels``, ``clipped_fraction`` (share of samples at full scale) and
    ``dc_offset`` (mean sample): from ``clip.meta["native"]`` when the reader recorded them,
    else computed from the mono audio, with 1 channel.
    """
    native = clip.meta.get("native")
    if native:
        return {k: native[k] for k in ("sample_rate", "channels", "clipped_fraction", "dc_offset")}
    audio = np.asarray(clip.audio, dtype=np.float32)
    return {
        "sample_rate": int(clip.sample_rate),
        "channels": 1,
        "clipped_fraction": float(np.mean(np.abs(audio) >= FULL_SCALE)) if audio.size else 0.0,
        "dc_offset": float(audio.mean(dtype=np.float64)) if audio.size else 0.0,
    }
