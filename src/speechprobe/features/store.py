"""Content-keyed, append-only feature store with atomic per-item writes.

Layout::

    ROOT/<space>/space.json            what the space holds (model, weights hash, options)
    ROOT/<space>/items/<h[:2]>/<h>.npy  one (num_layers, dim) float32 array per clip

``space`` = hash of (model name, weights hash, options incl. window and pooling); ``h`` = the
clip's audio content hash. Items are written to a temporary file and renamed into place, so a
reader never sees a torn item and two processes can fill the same store at once. Each ``.npy``
can be memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpeechprobeError
from ..rundir import atomic_write_bytes


def space_key(model: str, weights_hash: str, options: dict[str, object]) -> str:
    """Deterministic id of a feature space."""
    blob = json.dumps({"model": model, "weights": weights_hash, "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


@dataclass
class FeatureSpace:
    """One (model, weights, options) space inside a store."""

    root: Path
    meta: dict[str, object]

    def item_path(self, content_hash: str) -> Path:
        return self.root / "items" / content_hash[:2] / f"{content_hash}.npy"

    def has(self, content_hash: str) -> bool:
        return self.item_path(content_hash).is_file()

    def put(self, content_hash: str, features: np.ndarray) -> None:
        """Store one clip's ``(num_layers, dim)`` features atomically (idempotent)."""
        try:
            atomic_write_bytes(self.item_path(content_hash), _npy_bytes(features))
        except OSError as e:
            raise SpeechprobeError(
                f"cannot write to the feature store {self.root} ({e.strerror or e}); "
                "what was stored before stays valid — free space or pass another --cache"
            ) from None

    def get(self, content_hash: str, mmap: bool = False) -> np.ndarray:
        return np.load(self.item_path(content_hash), mmap_mode="r" if mmap else None, allow_pickle=False)

    def gather(self, hashes: Sequence[str], layers: Iterable[int] | None = None, out: Path | None = None) -> np.ndarray:
        """Stack stored features of ``hashes`` into ``(N, L, D)`` (optionally only some layers).

        With ``out`` the stack is written to that ``.npy`` file and returned memory-mapped, so a
        corpus's features never have to fit in memory at once (probes then read one layer at a time).
        """
        if not hashes:
            raise SpeechprobeError(f"{self.root}: no items to gather")
        first = self.get(hashes[0], mmap=True)
        idx = list(range(first.shape[0])) if layers is None else list(layers)
        shape = (len(hashes), len(idx), first.shape[1])
        if out is None:
            stack = np.empty(shape, dtype=np.float32)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            stack = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=shape)
        for i, h in enumerate(hashes):
            stack[i] = self.get(h, mmap=True)[idx]
        if out is None:
            return stack
        stack.flush()
        del stack
        return np.load(out, mmap_mode="r")


@dataclass
class VerifyReport:
    """What ``FeatureStore.verify`` found (and removed when repairing)."""

    items: int = 0
    torn: list[Path] = field(default_factory=list)  # unreadable or inconsistent item files
    orphans: list[Path] = field(default_factory=list)  # temp files of interrupted writes

    @property
    def ok(self) -> bool:
        return not self.torn and not self.orphans


def _check_item(path: Path) -> tuple[int, ...] | None:
    """The item's shape if it is a complete float32 2-D .npy, else None."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.dtype != np.float32 or arr.ndim != 2:
            return None
        expected = arr.offset + arr.nbytes  # a torn tail makes the file shorter than its header says
        return tuple(arr.shape) if path.stat().st_size == expected else None
    except (OSError, ValueError, EOFError):
        return None


class FeatureStore:
    """A folder of feature spaces."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def verify(self, repair: bool = False) -> VerifyReport:
        """Find torn items (unreadable, or a shape unlike the rest of their space) and orphan temp files.

        With ``repair`` they are deleted, so the next extraction recomputes exactly those clips.
        """
        report = VerifyReport()
        for space in sorted(p for p in self.root.glob("*") if p.is_dir()):
            report.orphans.extend(sorted(space.rglob(".tmp-*")))
            items = sorted(p for p in space.glob("items/*/*.npy") if not p.name.startswith("."))
            shapes: dict[Path, tuple[int, ...] | None] = {p: _check_item(p) for p in items}
            report.items += len(shapes)
            valid = [s for s in shapes.values() if s is not None]
            common = max(set(valid), key=valid.count) if valid else None
            report.torn.extend(p for p, s in shapes.items() if s is None or s != common)
        if repair:
            for p in (*report.torn, *report.orphans):
                p.unlink(missing_ok=True)
        return report

    def space(self, model: str, weights_hash: str, options: dict[str, object]) -> FeatureSpace:
        key = space_key(model, weights_hash, options)
        root = self.root / key
        meta = {"model": model, "weights": weights_hash, "options": options}
        meta_path = root / "space.json"
        if not meta_path.is_file():
            try:
                atomic_write_bytes(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode())
            except OSError as e:
                raise SpeechprobeError(f"cannot create the feature store at {root} ({e.strerror or e})") from None
        return FeatureSpace(root, meta)
