"""Thin wrapper around the ``espeak-ng`` command line: text in, float32 mono out."""

from __future__ import annotations

import functools
import shutil
import subprocess
from xml.sax.saxutils import escape

import numpy as np

from ...errors import SpeechprobeError

_INSTALL_HINT = "install eSpeak NG (`apt-get install espeak-ng`) to generate the synthetic suite"
# eSpeak NG 1.51 silently drops the variant of "en-gb+X" (same audio as plain "en-gb"); "en" names
# the same voice file (gmw/en) and honours variants.
_LANGUAGE_ALIASES = {"en-gb": "en"}


def executable() -> str:
    """Path of ``espeak-ng``; raises a one-line error when it is missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechprobeError(f"espeak-ng not found on PATH: {_INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=1)
def version() -> str:
    """The eSpeak NG version string (part of the synthetic suite's cache key)."""
    out = subprocess.run([executable(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split("Data at:")[0].strip()


@functools.lru_cache(maxsize=1)
def variants() -> frozenset[str]:
    """Names usable after ``+`` in a voice (``en-us+f3``): the variant file names."""
    out = subprocess.run([executable(), "--voices=variant"], capture_output=True, text=True, check=True)
    rows = (line.split() for line in out.stdout.splitlines()[1:])
    return frozenset(row[4][3:] for row in rows if len(row) > 4 and row[4].startswith("!v/"))


def prosody(text: str, **attrs: str) -> str:
    """Wrap an SSML fragment in ``<prosody>`` (``pitch``, ``range``, ``rate``, ``volume``)."""
    if not attrs:
        return text
    spec = " ".join(f'{key}="{value}"' for key, value in attrs.items())
    return f"<prosody {spec}>{text}</prosody>"


def synthesize(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int | None = None,
    amplitude: int = 100,
    word_gap: int = 0,
    ssml: bool = False,
) -> tuple[np.ndarray, int]:
    """Speak ``text`` and return ``(audio, sample_rate)``; audio is float32 mono in [-1, 1].

    ``voice`` is a language voice with an optional variant (``"en-gb+m3"``). ``rate`` is in
    words per minute, ``pitch`` 0-99 (50 = the voice's own), ``amplitude`` 0-200, ``word_gap``
    in 10 ms units. The CLI has no pitch-range flag, so ``pitch_range`` (percent of the voice's
    own range) is applied with SSML ``<prosody range>``. ``ssml=True`` treats ``text`` as an SSML
    fragment (e.g. with ``<emphasis>``); otherwise it is escaped plain text.
    """
    language, _, variant = voice.partition("+")
    if variant:
        if variant not in variants():
            raise SpeechprobeError(f"unknown eSpeak NG variant {variant!r} in voice {voice!r}")
        voice = f"{_LANGUAGE_ALIASES.get(language, language)}+{variant}"
    body = text if ssml else escape(text)
    if pitch_range is not None:
        body = prosody(body, range=f"{pitch_range}%")
    args = [
        executable(),
        "--stdout",
        "--stdin",
        "-m",
        "-v",
        voice,
        "-s",
        str(rate),
        "-p",
        str(pitch),
        "-a",
        str(amplitude),
        "-g",
        str(word_gap),
    ]
    proc = subprocess.run(args, input=f"<speak>{body}</speak>".encode(), capture_output=True)
    if proc.returncode != 0:
        raise SpeechprobeError(f"espeak-ng failed on {text!r}: {proc.stderr.decode().strip()}")
    return _decode_wav(proc.stdout)


def _decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Parse espeak's streamed PCM16 WAV (its size fields are placeholders when piped)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechprobeError("espeak-ng produced no WAV output")
    pos = 12
    sample_rate = 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            sample_rate = int.from_bytes(data[pos + 12 : pos + 16], "little")
        elif chunk == b"data":
            pcm = data[pos + 8 :]
            pcm = pcm[: len(pcm) // 2 * 2]
            audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
            return audio, sample_rate
        pos += 8 + size
    raise SpeechprobeError("espeak-ng WAV output has no data chunk")
