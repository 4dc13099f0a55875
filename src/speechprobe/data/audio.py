"""Decode, mix down, resample and validate audio; every failure names the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError

MIN_SAMPLES = 160  # shorter clips are zero-padded to this (10 ms at 16 kHz) by the caller's policy


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a file as float32 mono at its native rate.

    Tries libsndfile (WAV/FLAC/OGG/MP3 and more), then librosa's audioread/ffmpeg fallback.
    Raises AudioError with the path and the reason on any failure.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError(f"{p}: missing file" + (" (dangling symlink)" if p.is_symlink() else "")) from None
    except OSError as e:  # symlink loops, permissions
        raise AudioError(f"{p}: unreadable ({e.strerror or e})") from None
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not an audio file")
    if st.st_size == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as first:  # libsndfile cannot decode it: try the fallback decoder
        data, sr = _fallback_read(p, first)
    return as_mono(data), int(sr)


def _fallback_read(p: Path, first: Exception) -> tuple[np.ndarray, int]:
    try:
        import librosa

        # No catch_warnings here: this runs in decoding threads, where it is not thread-safe; the
        # thread pool hands its warnings to the consuming thread (speechprobe.parallel), which counts them.
        y, sr = librosa.load(str(p), sr=None, mono=False)
    except Exception:
        reason = str(first).splitlines()[0] if str(first) else type(first).__name__
        raise AudioError(f"{p}: not decodable as audio ({reason})") from None
    y = np.asarray(y, dtype=np.float32)
    return (y[:, None] if y.ndim == 1 else y.T), int(sr)


def as_mono(data: np.ndarray) -> np.ndarray:
    """Average channels: (n,) or (n, channels) -> float32 (n,)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32)


def validate(audio: np.ndarray, where: str) -> np.ndarray:
    """Reject empty or non-finite audio (never a silently wrong number)."""
    if audio.size == 0:
        raise AudioError(f"{where}: no audio samples")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioError(f"{where}: {bad} NaN/Inf samples")
    return audio


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """High-quality resampling (soxr) to ``target_sr``; a no-op when the rates match."""
    if orig_sr == target_sr:
        return audio
    import librosa

    return librosa.resample(audio, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(
        np.float32, copy=False
    )
