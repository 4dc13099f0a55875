"""The speechprobe cache: where converted checkpoints, features and synthetic data live."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from .errors import SpeechprobeError


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else ``$SPEECHPROBE_CACHE``, else the per-user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("SPEECHPROBE_CACHE") or user_cache_dir("speechprobe"))


def weights_sha256(paths: Sequence[Path], cache_dir: Path | None = None) -> str:
    """SHA-256 of the concatenated bytes of ``paths``.

    Digests are remembered in ``<cache>/weights-sha256.json``, keyed by resolved paths and each
    file's size and mtime, so unchanged files are not hashed again.
    """
    paths = [Path(p).resolve() for p in paths]
    key = "|".join(str(p) for p in paths)
    try:
        stamp = [[p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
    except OSError as exc:
        raise SpeechprobeError(f"{exc.filename}: cannot read ({exc.strerror})") from exc
    sidecar = cache_root(cache_dir) / "weights-sha256.json"
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{sidecar}.lock"):
        try:
            known = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        entry = known.get(key)
        if entry and entry.get("stamp") == stamp:
            return entry["sha256"]
        digest = hashlib.sha256()
        for path in paths:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
        known[key] = {"stamp": stamp, "sha256": digest.hexdigest()}
        tmp = sidecar.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        os.replace(tmp, sidecar)
    return digest.hexdigest()
