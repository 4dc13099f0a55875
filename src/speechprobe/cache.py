"""The speechprobe cache: where converted checkpoints, features, synthetic data and answers live.

One root holds everything: ``--cache`` (``cfg.compute.cache``), else ``$SPEECHPROBE_CACHE``, else the
per-user cache directory. A stage runs inside :func:`using_cache`, which makes its root the
process's ``$SPEECHPROBE_CACHE`` for the duration: every ``cache_root()`` call below it (model
loaders converting packaged checkpoints, worker threads) and every child process (Ray actors,
which get that variable forwarded) then uses the same root, without passing it through each call.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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


FULL_CHECK_SECONDS = 7 * 24 * 3600  # a remembered digest is trusted for a week at most, then the files are hashed


def file_stamp(path: Path) -> list[int]:
    """The cheap check of a file: size, mtime, ctime and inode (ctime moves on any write, even if mtime is reset)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def seal(*parts: object) -> str:
    """A short SHA-256 of ``parts`` (as canonical JSON): binds a remembered record to its key and content."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def weights_sha256(paths: Sequence[Path], cache_dir: Path | None = None, full: bool = False) -> str:
    """SHA-256 of the concatenated bytes of ``paths``.

    Digests are remembered in ``<cache>/weights-sha256.json``, keyed by the resolved paths. The rule
    (docs/reliability.md): a remembered digest is used without hashing only while every file's size,
    mtime, ctime and inode are those it was hashed with, its entry's seal (a hash of key, stamps,
    digest and time) holds, and it was hashed less than :data:`FULL_CHECK_SECONDS` ago; ``full``
    always hashes. Anything else hashes the files again, so an in-place edit with its mtime put back
    (ctime moves), a replaced file (inode), a hand-edited entry (seal) and, within a week, damage no
    stamp shows are all caught. A read-only cache still works: the digest is then not remembered.
    """
    paths = [Path(p).resolve() for p in paths]
    key = "|".join(str(p) for p in paths)
    try:
        stamp = [file_stamp(p) for p in paths]
    except OSError as exc:
        raise SpeechprobeError(f"{exc.filename}: cannot read ({exc.strerror})") from exc
    sidecar = cache_root(cache_dir) / "weights-sha256.json"
    entry = _read_json(sidecar).get(key)
    if not full and _trusted(entry, key, stamp):
        return entry["sha256"]
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{sidecar}.lock")
        lock.acquire()
    except OSError:  # a read-only cache: hash without remembering
        return _sha256(paths)
    try:
        digest = _sha256(paths)
        checked = time.time()
        known = _read_json(sidecar)
        known[key] = {"stamp": stamp, "sha256": digest, "checked": checked, "seal": seal(key, stamp, digest, checked)}
        try:
            atomic_write(sidecar, json.dumps(known, indent=1).encode())
        except SpeechprobeError:
            pass  # the digest is right; it is only not remembered
    finally:
        lock.release()
    return digest


def _trusted(entry: object, key: str, stamp: list) -> bool:
    """Whether a remembered entry may stand in for hashing (the rule of :func:`weights_sha256`)."""
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return False
    checked = entry.get("checked")
    if not isinstance(checked, (int, float)) or not 0 <= time.time() - checked < FULL_CHECK_SECONDS:
        return False
    return entry.get("seal") == seal(key, stamp, entry.get("sha256"), checked)


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


DIGESTS = "speechprobe-digests.json"


def write_digests(folder: Path, meta: dict, cache_dir: Path | None = None) -> dict[str, str]:
    """Record the SHA-256 of every file in ``folder`` (e.g. a checkpoint just converted) in ``folder/DIGESTS``.

    The record holds ``meta``, the digests and a seal over both, so a changed digest in it is caught too.
    """
    files = {p.name: weights_sha256([p], cache_dir, full=True) for p in _files(folder)}
    atomic_write(folder / DIGESTS, json.dumps({"meta": meta, "files": files, "seal": seal(meta, files)}).encode())
    return files


def read_digests(folder: Path) -> dict | None:
    """The sealed record of ``folder`` (``meta`` and ``files``), or None when absent, unreadable or unsealed."""
    record = _read_json(folder / DIGESTS)
    if record.get("seal") != seal(record.get("meta"), record.get("files")) or not isinstance(record["files"], dict):
        return None
    return record


def check_digests(folder: Path, cache_dir: Path | None = None, full: bool = False) -> str | None:
    """What is wrong with ``folder`` against its record (None: nothing), hashing by :func:`weights_sha256`'s rule."""
    record = read_digests(folder)
    if record is None:
        return f"no intact {DIGESTS} (missing, edited or written by an older speechprobe)"
    present = {p.name: p for p in _files(folder)}
    if set(present) != set(record["files"]):
        return f"its files are not those recorded ({', '.join(sorted(set(present) ^ set(record['files'])))})"
    for name, digest in record["files"].items():
        if weights_sha256([present[name]], cache_dir, full=full) != digest:
            return f"{name} differs from the SHA-256 recorded when it was written"
    return None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != DIGESTS)
