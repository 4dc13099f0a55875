"""User-facing errors: one clear line, no library traceback."""

from __future__ import annotations


class SpeechprobeError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line."""


class AudioError(SpeechprobeError):
    """A clip whose audio cannot be used (unreadable, empty, non-finite, ...)."""


class ConfigError(SpeechprobeError):
    """A bad option or option combination."""
