"""Decode, mix down, resample and validate audio; every failure names the file.

Files are decoded in blocks and only as far as a run uses them: at most ``max_seconds`` (default
:data:`MAX_CLIP_SECONDS`), so memory stays bounded for any file, even an 18-hour recording. Before
mixdown and resampling the reader measures the source's facts (:class:`Decoded.native`: rate,
channels, clipped fraction and DC offset, as :func:`speechprobe.data.clip.audio_facts` defines
them) and notices a WAV whose header claims more data than the file holds; callers record both.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..errors import AudioError
from .clip import CLIP_LEVEL, audio_facts

MAX_CLIP_SECONDS = 600.0  # decoded per clip by default; longer clips are cut (and counted)
# Peak amplitude beyond which float audio is not audio at any plausible scale (full scale is 1.0): 60 dB over
# full scale. Such a clip (e.g. 1e18) is skipped like a NaN/Inf one, with its peak in the reason.
MAX_PEAK = 1000.0
BLOCK_SECONDS = 10.0  # decoded at once: bounds the multichannel float32 buffer
_SHORT_DATA = re.compile(r"\bdata\s*:\s*(\d+)\s*\(should be (\d+)\)")


@dataclass
class Decoded:
    """A decoded file: float32 mono at its native rate (at most ``max_seconds``) and facts about the source."""

    audio: np.ndarray
    sample_rate: int
    native: dict[str, Any]  # sample_rate, channels, clipped_fraction, dc_offset (before mixdown and resampling)
    seconds: float | None = None  # the source's length as its header gives it (None when unknown)
    cut: bool = False  # longer than max_seconds: only the start was decoded
    short_data: str | None = None  # the header claims more data than the file holds: what is missing

    def notes(self, max_seconds: float | None) -> list[tuple[str, str]]:
        """The caveats to record for this clip: (reason, kind) with kind ``cut`` or ``short_data``."""
        out = []
        if self.cut:
            length = f"{self.seconds:.0f} s long" if self.seconds else "longer than that"
            out.append((f"{length}; only the first {max_seconds:g} s are used (--max-clip-seconds)", "cut"))
        if self.short_data:
            out.append((f"{self.short_data}; only what is there is used", "short_data"))
        return out


def _block_stats(block: np.ndarray) -> tuple[int, float, int]:
    finite = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
    return int((np.abs(finite) >= CLIP_LEVEL).sum()), float(finite.sum(dtype=np.float64)), int(block.size)


def decode(source: str | os.PathLike | Any, max_seconds: float | None = MAX_CLIP_SECONDS) -> Decoded:
    """Decode a path or binary file object with libsndfile, block by block, up to ``max_seconds``."""
    with sf.SoundFile(source) as f:
        sr, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        limit = int(round(max_seconds * sr)) if max_seconds is not None else -1
        parts, clipped, total, count = [], 0, 0.0, 0
        block = max(1, int(BLOCK_SECONDS * sr))
        for chunk in f.blocks(blocksize=block, frames=limit, dtype="float32", always_2d=True):
            c, s, n = _block_stats(chunk)
            clipped, total, count = clipped + c, total + s, count + n
            parts.append(as_mono(chunk))
        info = f.extra_info
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    native = {  # data.clip.audio_facts, accumulated block by block
        "sample_rate": sr,
        "channels": channels,
        "clipped_fraction": clipped / count if count else 0.0,
        "dc_offset": total / count if count else 0.0,
    }
    known = 0 < frames < 2**62
    cut = limit >= 0 and (frames > limit if known else len(audio) >= limit)
    return Decoded(audio, sr, native, frames / sr if known else None, cut, _short_data(info))


def _short_data(info: str) -> str | None:
    """What libsndfile's log says is missing when a header claims more data than the file holds."""
    m = _SHORT_DATA.search(info or "")
    if m and int(m.group(1)) > int(m.group(2)):
        return f"its header claims {int(m.group(1))} bytes of audio, the file holds {int(m.group(2))}"
    return None


def read(path: str | os.PathLike, max_seconds: float | None = MAX_CLIP_SECONDS) -> Decoded:
    """Read a file as float32 mono at its native rate (at most ``max_seconds``), with its source facts.

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
        return decode(str(p), max_seconds)
    except Exception as first:  # libsndfile cannot decode it: try the fallback decoder
        return _fallback_read(p, first, max_seconds)


def _fallback_read(p: Path, first: Exception, max_seconds: float | None) -> Decoded:
    try:
        import librosa

        # No catch_warnings here: this runs in decoding threads, where it is not thread-safe; the
        # thread pool hands its warnings to the consuming thread (speechprobe.parallel), which counts them.
        y, sr = librosa.load(str(p), sr=None, mono=False, duration=max_seconds)
        seconds = librosa.get_duration(path=str(p))
    except Exception:
        reason = str(first).splitlines()[0] if str(first) else type(first).__name__
        raise AudioError(f"{p}: not decodable as audio ({reason})") from None
    y = np.asarray(y, dtype=np.float32)
    data = y[:, None] if y.ndim == 1 else y.T
    cut = max_seconds is not None and seconds > max_seconds
    return Decoded(as_mono(data), int(sr), audio_facts(data, int(sr)), float(seconds), cut)


def from_array(value: Mapping[str, Any], where: str, max_seconds: float | None) -> Decoded:
    """An already decoded cell (``{"array", "sampling_rate"}``), cut to ``max_seconds``."""
    sr = value.get("sampling_rate")
    if not sr:
        raise AudioError(f"{where}: audio array without a sampling_rate")
    data = np.asarray(value["array"], dtype=np.float32)
    if data.ndim == 2 and data.shape[0] < data.shape[1]:  # (channels, samples) as HF decodes it
        data = data.T
    total = len(data)
    keep = total if max_seconds is None else int(round(max_seconds * int(sr)))
    data = data[:keep]
    return Decoded(as_mono(data), int(sr), audio_facts(data, int(sr)), total / int(sr), total > keep)


def decode_bytes(data: bytes, where: str, hint: str | None = None, max_seconds: float | None = None) -> Decoded:
    """Decode an encoded audio file held in memory (libsndfile, then librosa via a temp file)."""
    if not data:
        raise AudioError(f"{where}: empty audio bytes")
    try:
        return decode(io.BytesIO(data), max_seconds)
    except Exception as e:
        first = e
    suffix = Path(hint).suffix if hint else ""
    with tempfile.TemporaryDirectory(prefix="speechprobe-") as tmp:
        p = Path(tmp) / f"clip{suffix or '.bin'}"
        p.write_bytes(data)
        try:
            return read(p, max_seconds)  # librosa/audioread fallback for formats libsndfile lacks
        except AudioError:
            pass
    text = str(first).strip().splitlines()[0] if str(first).strip() else ""
    text = re.sub(r"^Error opening .*?: ", "", text).strip().rstrip(".") or type(first).__name__
    raise AudioError(f"{where}: not decodable as audio ({text})")


def as_mono(data: np.ndarray) -> np.ndarray:
    """Average channels: (n,) or (n, channels) -> float32 (n,)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32)


def validate(audio: np.ndarray, where: str) -> np.ndarray:
    """Reject empty, non-finite or absurdly loud audio (peak above :data:`MAX_PEAK`): never a silently wrong number."""
    if audio.size == 0:
        raise AudioError(f"{where}: no audio samples")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioError(f"{where}: {bad} NaN/Inf samples")
    peak = float(np.abs(audio).max())
    if peak > MAX_PEAK:
        raise AudioError(f"{where}: peak amplitude {peak:.3g}, over {MAX_PEAK:g} times full scale (not audio)")
    return audio


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """High-quality resampling (soxr) to ``target_sr``; a no-op when the rates match."""
    if orig_sr == target_sr:
        return audio
    import librosa

    return librosa.resample(audio, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(
        np.float32, copy=False
    )
