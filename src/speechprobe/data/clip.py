"""The Clip: one utterance flowing through the pipeline."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FACTS = ("sample_rate", "channels", "clipped_fraction", "dc_offset")
CLIP_LEVEL = 32767 / 32768  # 16-bit full scale: a sample at or beyond it counts as clipped


def audio_hash(audio: np.ndarray, sample_rate: int) -> str:
    """Content hash of a waveform (float32 mono) and its sample rate."""
    h = hashlib.sha256()
    h.update(str(int(sample_rate)).encode())
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    return h.hexdigest()


def audio_facts(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Source facts of a waveform, ``(samples,)`` or ``(samples, channels)``, as read from its file.

    ``clipped_fraction``: share of samples (all channels) at or beyond 16-bit full scale (``CLIP_LEVEL``);
    ``dc_offset``: mean sample value over all channels. File readers call this before mixdown and
    resampling and keep the result in ``clip.meta["native"]``.
    """
    a = np.asarray(audio, dtype=np.float32)
    return {
        "sample_rate": int(sample_rate),
        "channels": 1 if a.ndim == 1 else int(a.shape[1]),
        "clipped_fraction": float(np.mean(np.abs(a) >= CLIP_LEVEL)) if a.size else 0.0,
        "dc_offset": float(a.mean(dtype=np.float64)) if a.size else 0.0,
    }


def native_facts(clip: Clip) -> dict[str, Any]:
    """The clip's source facts: ``clip.meta["native"]`` where a reader recorded them, else from its own audio."""
    native = clip.meta.get("native") or {}
    if all(k in native for k in FACTS):
        return {k: native[k] for k in FACTS}
    return {**audio_facts(clip.audio, clip.sample_rate), **{k: native[k] for k in FACTS if k in native}}


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
        """sha256 of the waveform, the feature cache's key; with the source facts where the audio cannot tell them.

        A clip read from a stereo file, or from a file at another rate than ``sample_rate``, has the
        same mono audio as another clip but not the same source: its facts (``native_facts``) are
        folded into the hash, so features of the nuisance baselines that read them are never reused
        across such clips. A mono clip at its file's rate keeps the plain audio hash.
        """
        if self._hash is None:  # the audio hash (a reader may pass it in, having computed it already)
            self._hash = audio_hash(self.audio, self.sample_rate)
        facts = native_facts(self) if self.meta.get("native") else None
        if facts and (facts["channels"] != 1 or facts["sample_rate"] != int(self.sample_rate)):
            return hashlib.sha256(f"{self._hash}\n{json.dumps(facts, sort_keys=True)}".encode()).hexdigest()
        return self._hash
