"""Installed plugins: what other packages declare in one of speechprobe's entry point groups."""

from __future__ import annotations

from importlib.metadata import entry_points

from .errors import SpeechprobeError


def declared(group: str, what: str, kind: type | None = None) -> list:
    """Every object the entry points of ``group`` point at (an entry point may point at a list of them);
    a plugin that fails to load, or (with ``kind``) declares something else, stops with one line naming it
    (``what``: "model family", "probe", "task", "analysis")."""
    out = []
    for ep in entry_points(group=group):
        try:
            value = ep.load()
        except Exception as e:
            raise SpeechprobeError(f"{what} plugin {ep.name} ({ep.value}) failed to load: {e}") from None
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if kind is not None and not isinstance(item, kind):
                raise SpeechprobeError(f"{what} plugin {ep.name}: {item!r} is not a {kind.__module__}.{kind.__name__}")
            out.append(item)
    return out
