"""The training audio: every ``--data`` source read once at 16 kHz, and each step's crops drawn from (seed, step).

A source is an audio folder (every WAV/FLAC/OGG/MP3 under it), a manifest CSV or a registered task (read through
``data.resolve.open_task``, so the same sources as ``--tasks``); ``synthetic`` is a larger set rendered from the
suite's voices and texts under a seed of its own, so its clips are not the probe tasks' clips. A file that cannot
be read is one line and is left out; the rest trains.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.audio import read, resample
from ..errors import SpeechprobeError

log = logging.getLogger("speechprobe.lab")
SAMPLE_RATE = 16000
HOP = 320  # samples per frame of the convolutional encoder; crops start on a frame boundary
MIN_SECONDS = 0.5
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SYNTHETIC_TASKS = ("emotion", "gender", "accent", "stress", "speaker_count", "emphasis")
CORPUS_SEED = 7919  # the synthetic corpus's own seed: not the probe tasks' (0)


@dataclass
class Corpus:
    """Training clips (float32, 16 kHz, at least ``MIN_SECONDS``) and a hash of their content."""

    clips: list[np.ndarray]
    digest: str

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.clips) / SAMPLE_RATE

    def batch(self, seed: int, step: int, size: int, crop_seconds: float) -> Crops:
        """Step ``step``'s crops, a function of (seed, step) only.

        ``size`` clips drawn without replacement (with it when the corpus is smaller), all cut to the shortest
        clip drawn (at most ``crop_seconds``), each at a random frame-aligned offset, normalised to zero mean and
        unit variance (as the saved feature extractor's ``do_normalize``).
        """
        rng = np.random.default_rng([seed, step, 1])
        idx = rng.choice(len(self.clips), size=size, replace=size > len(self.clips))
        length = min(int(crop_seconds * SAMPLE_RATE), *(len(self.clips[i]) for i in idx))
        starts = np.array([int(rng.integers(0, (len(self.clips[i]) - length) // HOP + 1)) for i in idx])
        audio = np.empty((size, length), dtype=np.float32)
        for row, (i, start) in enumerate(zip(idx, starts)):
            x = self.clips[i][HOP * start : HOP * start + length]
            audio[row] = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        return Crops(idx, starts, audio)


@dataclass
class Crops:
    """One step's batch: clip indices, start frames and the normalised audio ``(batch, samples)``."""

    clips: np.ndarray
    starts: np.ndarray
    audio: np.ndarray


def _digest(clips: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for c in clips:
        h.update(hashlib.sha256(c.tobytes()).digest())
    return h.hexdigest()[:16]


def from_arrays(clips: list[np.ndarray]) -> Corpus:
    """A corpus of 16 kHz arrays (too-short ones left out)."""
    kept = [np.asarray(c, dtype=np.float32) for c in clips if len(c) >= MIN_SECONDS * SAMPLE_RATE]
    if not kept:
        raise SpeechprobeError(f"--data: no clip of at least {MIN_SECONDS} s to train on")
    return Corpus(kept, _digest(kept))


def _folder(path: Path) -> list[np.ndarray]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise SpeechprobeError(f"--data {path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) under it")
    out = []
    for f in files:
        try:
            d = read(f)
        except SpeechprobeError as e:
            log.warning("left out of the training audio: %s", e)
            continue
        out.append(resample(d.audio, d.sample_rate, SAMPLE_RATE))
    return out


def _task(spec: str, cache_root: Path, seed: int, n_per_class: int | None, progress: bool) -> list[np.ndarray]:
    from ..data.resolve import open_task

    _, source = open_task(spec, cache_root, seed=seed, n_per_class=n_per_class, progress=progress)
    return [resample(c.audio, c.sample_rate, SAMPLE_RATE) for c in source]


def load_corpus(data: list[str], cache_root: Path, n_per_class: int = 100, progress: bool = False) -> Corpus:
    """Every source of ``data`` (module docstring), in order."""
    clips: list[np.ndarray] = []
    for spec in data:
        path = Path(spec).expanduser()
        if spec == "synthetic":
            for name in SYNTHETIC_TASKS:
                clips += _task(name, cache_root, CORPUS_SEED, n_per_class, progress)
        elif path.is_dir() and not (path / "dataset_info.json").exists() and not any(path.glob("*.parquet")):
            clips += _folder(path)
        else:
            clips += _task(spec, cache_root, 0, None, progress)
    return from_arrays(clips)
