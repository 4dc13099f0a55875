"""Content-keyed, append-only feature store with atomic, checksummed per-item writes.

Layout::

    ROOT/<space>/space.json            what the space holds (model, weights hash, options)
    ROOT/<space>/items/<h[:2]>/<h>.npy  one (num_layers, dim) float32 array per clip, then a checksum

``space`` = hash of (model name, weights hash, options incl. window and pooling); ``h`` = the
clip's audio content hash. Items are written to a temporary file and renamed into place, so a
reader never sees a torn item and two processes can fill the same store at once.

Each item is a standard ``.npy`` file followed by a 12-byte trailer, ``SPX4`` and the xxHash3-64
of the item's key (``<space>/<h>``) followed by the ``.npy`` bytes (``numpy.load`` ignores the
trailer). The key in the checksum binds an item to its place: an item file copied or swapped onto
another clip's or another space's path fails its check like a changed byte. Every read checks the
length and the checksum: a truncated, corrupted or misplaced item, or one written before checksums
covered the key (``SPX3``, or no trailer), is reported, deleted and recomputed (``FeatureSpace.has``
returns False for it), and counted in ``FeatureSpace.repaired`` (which manifest.json records). Old
items are recomputed, not upgraded: their checksum cannot tell whether they sit under the right key.
A feature item is a few kB, so the check costs well under 1 % of extraction
(``benchmarks/bench_checksum.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from ..errors import SpeechprobeError
from ..files import TMP_MARK, atomic_write, atomic_write_many, is_disk_error, write_error

log = logging.getLogger("speechprobe")

MAGIC = b"SPX4"  # SPX3: the checksum of the bytes alone (recomputed when found)
OLD_MAGIC = b"SPX3"
TRAILER = len(MAGIC) + 8
STORE_HINT = "what was stored before stays valid; free space or pass another --cache"


class CorruptItem(SpeechprobeError):
    """A stored item failed its check on read (it has been removed; a rerun recomputes it)."""


def space_key(model: str, weights_hash: str, options: dict[str, object]) -> str:
    """Deterministic id of a feature space."""
    blob = json.dumps({"model": model, "weights": weights_hash, "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def item_key(path: Path) -> str:
    """The key an item's checksum covers: ``<space id>/<clip content hash>``, read from its path."""
    return f"{path.parent.parent.parent.name}/{path.stem}"


def checksum(key: str, data: bytes) -> bytes:
    """The 8-byte xxHash3-64 digest of ``key`` (its UTF-8 bytes and a NUL) followed by ``data``."""
    h = xxhash.xxh3_64(key.encode() + b"\0")
    h.update(data)
    return h.digest()


def item_bytes(arr: np.ndarray, key: str) -> bytes:
    """A stored item: the array as float32 ``.npy``, then ``MAGIC`` and the checksum of ``key`` and those bytes."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    body = buf.getvalue()
    return body + MAGIC + checksum(key, body)


def read_item(path: Path) -> tuple[np.ndarray | None, str | None]:
    """``(array, None)`` for a sound item, else ``(None, problem)``.

    Problems: ``unreadable``, ``truncated`` (shorter than its header says), ``unverified`` (a complete
    ``.npy`` whose checksum does not cover its key, or none: written by an older speechprobe),
    ``checksum`` (bytes changed, or the item sits under another clip's or space's key).
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None, "unreadable"
    parsed = _header(data)
    if parsed is None:
        return None, "truncated" if len(data) < 128 else "unreadable"
    shape, fortran, dtype, offset = parsed
    if dtype != np.float32 or len(shape) != 2 or fortran:
        return None, "unreadable"
    end = offset + int(np.prod(shape)) * 4
    if len(data) < end:
        return None, "truncated"
    if len(data) == end:
        return None, "unverified"
    if len(data) == end + TRAILER and data[end : end + len(MAGIC)] == OLD_MAGIC:
        return None, "unverified"
    if len(data) != end + TRAILER or data[end : end + len(MAGIC)] != MAGIC:
        return None, "unreadable"
    if checksum(item_key(path), data[:end]) != data[end + len(MAGIC) :]:
        return None, "checksum"
    return np.frombuffer(data, dtype=np.float32, count=int(np.prod(shape)), offset=offset).reshape(shape), None


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
# The header np.save writes for a C-ordered float32 matrix; parsed without literal_eval (10x faster).
_PLAIN_HEADER = re.compile(rb"\{'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n")


def _header(data: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    """(shape, fortran_order, dtype, data offset) of ``.npy`` bytes, or None when unreadable."""
    if data[:8] == b"\x93NUMPY\x01\x00" and len(data) >= 10:
        end = 10 + int.from_bytes(data[8:10], "little")
        m = _PLAIN_HEADER.fullmatch(data[10:end])
        if m:
            return (int(m.group(1)), int(m.group(2))), False, np.dtype(np.float32), end
    try:
        buf = io.BytesIO(data)
        read_header = _HEADER_READERS.get(np.lib.format.read_magic(buf))
        if read_header is None:
            return None
        shape, fortran, dtype = read_header(buf)
        return shape, fortran, dtype, buf.tell()
    except (ValueError, EOFError, OSError):
        return None


PROBLEM_TEXT = {
    "unreadable": "unreadable",
    "truncated": "truncated (shorter than its header says)",
    "unverified": "written before checksums covered the item's key (an older speechprobe)",
    "checksum": "checksum mismatch (the bytes changed after writing, or the item sits under another key)",
}


@dataclass
class FeatureSpace:
    """One (model, weights, options) space inside a store."""

    root: Path
    meta: dict[str, object]
    repaired: Counter = field(default_factory=Counter)  # problem -> items found bad, removed and recomputed

    def item_path(self, content_hash: str) -> Path:
        return self.root / "items" / content_hash[:2] / f"{content_hash}.npy"

    def has(self, content_hash: str) -> bool:
        """Whether a sound item is stored; a bad one is reported, removed and counted (so it is recomputed)."""
        path = self.item_path(content_hash)
        if not path.is_file():
            return False
        _, problem = read_item(path)
        if problem is None:
            return True
        self._discard(path, problem)
        return False

    def _discard(self, path: Path, problem: str) -> None:
        log.warning("feature store item %s: %s; it is recomputed", path, PROBLEM_TEXT[problem])
        self.repaired[problem] += 1
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only store: the write that follows names the directory

    def put(self, content_hash: str, features: np.ndarray) -> None:
        """Store one clip's ``(num_layers, dim)`` features atomically, with a checksum (idempotent)."""
        atomic_write(*self.item(content_hash, features), what=f"the feature store {self.root}", hint=STORE_HINT)

    def item(self, content_hash: str, features: np.ndarray) -> tuple[Path, bytes]:
        """The path and checksummed bytes :meth:`put` writes."""
        path = self.item_path(content_hash)
        return path, item_bytes(features, item_key(path))

    def get(self, content_hash: str) -> np.ndarray:
        """One verified item; a bad one raises :class:`CorruptItem` (and is removed, so a rerun recomputes it)."""
        path = self.item_path(content_hash)
        if not path.is_file():
            raise SpeechprobeError(f"{path}: not in the feature store; rerun the extraction")
        arr, problem = read_item(path)
        if problem is not None:
            self._discard(path, problem)
            raise CorruptItem(
                f"feature store item {path} is {PROBLEM_TEXT[problem]}; rerun the same command to recompute it"
            )
        return arr

    def gather(self, hashes: Sequence[str], layers: Iterable[int] | None = None, out: Path | None = None) -> np.ndarray:
        """Stack stored features of ``hashes`` into ``(N, L, D)`` (optionally only some layers).

        With ``out`` the stack is written to that ``.npy`` file and returned memory-mapped, so a
        corpus's features never have to fit in memory at once (probes then read one layer at a time).
        The file is written with ordinary writes, never through a sparse memory map, so a full disk
        raises a one-line error naming the directory instead of killing the process.
        """
        if not hashes:
            raise SpeechprobeError(f"{self.root}: no items to gather")
        first = self.get(hashes[0])
        idx = list(range(first.shape[0])) if layers is None else list(layers)
        shape = (len(hashes), len(idx), first.shape[1])
        if out is None:
            stack = np.empty(shape, dtype=np.float32)
            for i, h in enumerate(hashes):
                stack[i] = self.get(h)[idx]
            return stack
        out = Path(out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "wb") as fh:
                header = {"descr": "<f4", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(fh, header)
                for h in hashes:
                    fh.write(np.ascontiguousarray(self.get(h)[idx], dtype="<f4").tobytes())
        except OSError as e:
            if is_disk_error(e):
                raise write_error(e, out.parent) from None
            raise
        return np.load(out, mmap_mode="r")


@dataclass
class VerifyReport:
    """What ``FeatureStore.verify`` found (and removed when repairing)."""

    items: int = 0
    torn: list[Path] = field(default_factory=list)  # unreadable, truncated or unlike their space's shape
    corrupt: list[Path] = field(default_factory=list)  # checksum mismatch (changed bytes, or under another key)
    unverified: list[Path] = field(default_factory=list)  # written before checksums covered the key
    orphans: list[Path] = field(default_factory=list)  # temp files and folders of interrupted writes and probing

    @property
    def bad(self) -> list[Path]:
        return [*self.torn, *self.corrupt, *self.unverified, *self.orphans]

    @property
    def ok(self) -> bool:
        return not self.bad


def is_temp_name(name: str) -> bool:
    """Temporary files of atomic writes: ``.NAME.tmp-…`` (:mod:`speechprobe.files`), ``.tmp-…`` (older versions)."""
    return (name.startswith(".") and TMP_MARK in name) or name.startswith(".tmp-")


def put_many(items: Sequence[tuple[FeatureSpace, str, np.ndarray]]) -> None:
    """Store several (space, content hash, features) as :meth:`FeatureSpace.put` does, each item atomic, in one
    batched write (:func:`~speechprobe.files.atomic_write_many`: their fsyncs together). Used by the extraction
    for each forward batch, over every pooling space it fills (``--pooling-variants``)."""
    files = dict(space.item(h, feats) for space, h, feats in items)
    if files:
        where = f"the feature store {items[0][0].root.parent}"
        atomic_write_many(files, what=where, hint=STORE_HINT)


class FeatureStore:
    """A folder of feature spaces."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check every item (length, checksum, shape against the rest of its space) and find temp leftovers.

        With ``repair`` the bad entries are deleted, so the next extraction recomputes exactly those clips.
        """
        report = VerifyReport()
        if not self.root.is_dir():
            return report
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and entry.name.startswith("tmp") and (entry / "features.npy").exists():
                report.orphans.append(entry)  # probing scratch of speechprobe <= 0.1, left by a crash
        for space in sorted(p for p in self.root.iterdir() if p.is_dir() and (p / "items").is_dir()):
            report.orphans.extend(sorted(p for p in space.rglob("*") if is_temp_name(p.name)))
            items = sorted(p for p in space.glob("items/*/*.npy") if not p.name.startswith("."))
            report.items += len(items)
            shapes: dict[Path, tuple[int, ...]] = {}
            for p in items:
                arr, problem = read_item(p)
                if problem == "checksum":
                    report.corrupt.append(p)
                elif problem == "unverified":
                    report.unverified.append(p)
                elif problem is not None:
                    report.torn.append(p)
                else:
                    shapes[p] = arr.shape
            common = Counter(shapes.values()).most_common(1)
            report.torn.extend(p for p, s in shapes.items() if common and s != common[0][0])
        report.torn.sort()
        if repair:
            for p in report.bad:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return report

    def space(self, model: str, weights_hash: str, options: dict[str, object]) -> FeatureSpace:
        key = space_key(model, weights_hash, options)
        root = self.root / key
        meta = {"model": model, "weights": weights_hash, "options": options}
        meta_path = root / "space.json"
        if not meta_path.is_file():
            atomic_write(
                meta_path,
                json.dumps(meta, indent=2, sort_keys=True).encode(),
                what=f"the feature store {self.root}",
                hint="pass a writable --cache",
            )
        return FeatureSpace(root, meta)
