"""The speechprobe cache: where converted checkpoints, features, synthetic data and answers live.

One root holds everything: ``--cache`` (``cfg.cache``), else ``$SPEECHPROBE_CACHE``, else the
per-user cache directory. A stage runs inside :func:`using_cache`, which makes its root the
process's ``$SPEECHPROBE_CACHE`` for the duration: every ``cache_root()`` call below it (model
loaders converting packaged checkpoints, worker threads) and every child process (Ray actors,
which get that variable forwarded) then uses the same root, without passing it through each call.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from .errors import SpeechprobeError
from .files import atomic_write

ENV = "SPEECHPROBE_CACHE"


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else ``$SPEECHPROBE_CACHE``, else the per-user cache dir."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get(ENV) or user_cache_dir("speechprobe"))


@contextmanager
def using_cache(cache_dir: Path | None) -> Iterator[Path]:
    """Run a stage with ``cache_dir`` (when given) as the one cache root of this process and its children."""
    root = cache_root(cache_dir)
    if cache_dir is None:
        yield root
        return
    before = os.environ.get(ENV)
    os.environ[ENV] = str(root)
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def weights_sha256(paths: Sequence[Path], cache_dir: Path | None = None) -> str:
    """SHA-256 of the concatenated bytes of ``paths``.

    Digests are remembered in ``<cache>/weights-sha256.json``, keyed by resolved paths and each
    file's size and mtime, so unchanged files are not hashed again. A read-only cache still works:
    the digest is then computed without being remembered.
    """
    paths = [Path(p).resolve() for p in paths]
    key = "|".join(str(p) for p in paths)
    try:
        stamp = [[p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
    except OSError as exc:
        raise SpeechprobeError(f"{exc.filename}: cannot read ({exc.strerror})") from exc
    sidecar = cache_root(cache_dir) / "weights-sha256.json"
    known = _read_json(sidecar)
    entry = known.get(key)
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{sidecar}.lock")
        lock.acquire()
    except OSError:  # a read-only cache: hash without remembering
        return _sha256(paths)
    try:
        known = _read_json(sidecar)
        digest = _sha256(paths)
        known[key] = {"stamp": stamp, "sha256": digest}
        try:
            atomic_write(sidecar, json.dumps(known, indent=1).encode())
        except SpeechprobeError:
            pass  # the digest is right; it is only not remembered
    finally:
        lock.release()
    return digest


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()
