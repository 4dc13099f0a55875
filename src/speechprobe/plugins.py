"""Installed plugins: what other packages declare in one of speechprobe's entry point groups."""

from __future__ import annotations

from importlib.metadata import entry_points

from .errors import SpeechprobeError


def declared(group: str, what: str) -> list:
    """Every object the entry points of ``group`` point at (an entry point may point at a list of them);
    a plugin that fails to load stops with one line naming it (``what``: "model family", "probe")."""
    out = []
    for ep in entry_points(group=group):
        try:
            value = ep.load()
        except Exception as e:
            raise SpeechprobeError(f"{what} plugin {ep.name} ({ep.value}) failed to load: {e}") from None
        out += value if isinstance(value, (list, tuple)) else [value]
    return out
