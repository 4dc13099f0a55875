"""speechprobe: what does each layer of a speech foundation model know about how something is said."""

from __future__ import annotations

__version__ = "0.1.0"
