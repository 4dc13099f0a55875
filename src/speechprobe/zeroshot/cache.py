"""The response cache: one small JSON file per (model, prompt, clip, decoding settings).

Layout: ``<cache>/zeroshot/<key[:2]>/<key>.json``, ``key`` = SHA-256 of the model's name and
weights fingerprint, the rendered prompt text, the clip's audio content hash, the mode, and every
decoding setting that can change the answer (the backend's ``settings()``: chat template, system
prompt, batch size, dtype, window, language...; plus ``max_new_tokens`` in generate mode and the
ordered candidate labels in likelihood mode). Each record is written to a temporary file and renamed
into place, so an interrupted run leaves only complete records and a rerun reuses every one of them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..files import atomic_write

CACHE_VERSION = 1


def response_key(model: str, fingerprint: str, prompt: str, clip_hash: str, mode: str, settings: dict[str, Any]) -> str:
    blob = json.dumps(
        {
            "v": CACHE_VERSION,
            "model": model,
            "weights": fingerprint,
            "prompt": prompt,
            "clip": clip_hash,
            "mode": mode,
            "settings": settings,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Content-keyed, append-only store of answers (generate) and label scores (likelihood)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.writes = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.hits += 1
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        atomic_write(self.path(key), json.dumps(record, sort_keys=True).encode())
        self.writes += 1
