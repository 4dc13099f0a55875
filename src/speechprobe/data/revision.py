"""Which revision of a dataset a run read: requested pins, resolved commits, local copies' content hashes.

Hub datasets are rewritten often, so ``Task.revision`` (or ``--tasks NAME@REVISION``) pins one, and
manifest.json records what was read (``tasks[t].revision``):

* a hub id: the commit ``datasets`` resolved (its builder's hash: the commit of the hub repository,
  also for a copy read from the HF cache offline, which is the cached commit);
* a local copy: the commit where the copy says it (a ``huggingface-cli download --local-dir`` folder
  keeps one in ``.cache/huggingface/download/*.metadata``; a path through the HF cache's
  ``snapshots/<commit>/``), else none, and in every case a content hash of its data files.

A pinned full commit that differs from the resolved one is an error (offline, the HF cache may hold
another commit than the one asked for). ``speechprobe reproduce`` compares the recorded entries with a
rerun's (:func:`revision_changes`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import SpeechprobeError

COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SNAPSHOT = re.compile(r"(?:^|/)snapshots/([0-9a-f]{40})(?:/|$)")


def split_revision(spec: str) -> tuple[str, str | None]:
    """``ds-stress@abc123`` -> (``ds-stress``, ``abc123``); no ``@``: (spec, None)."""
    name, at, rev = spec.partition("@")
    if not at:
        return spec, None
    if not name or not rev.strip():
        raise SpeechprobeError(f"--tasks {spec!r}: expected NAME@REVISION (a commit, tag or branch)")
    return name, rev.strip()


def hub_revision(repo: str, requested: str | None, resolved: str | None) -> dict:
    """manifest.json's entry for a hub dataset; a pinned commit that was not the one read is an error."""
    commit = resolved if resolved and COMMIT.match(resolved) else None
    if requested and COMMIT.match(requested) and commit and commit != requested:
        raise SpeechprobeError(
            f"{repo}: pinned to commit {requested} but {commit} was read (offline, the HF cache holds another "
            f"commit); fetch the pinned one with network access, or pass the cached one (--tasks NAME@{commit})"
        )
    return {"kind": "hub", "repo": repo, "requested": requested, "commit": commit}


def local_revision(base: Path, files: Iterable[Path], requested: str | None = None) -> dict:
    """manifest.json's entry for a local copy: its commit where knowable, and a content hash of its files."""
    files = sorted(files)
    commit = _snapshot_commit(base) or _download_metadata_commit(base)
    if requested and COMMIT.match(requested) and commit and commit != requested:
        raise SpeechprobeError(f"{base}: pinned to commit {requested}, but this copy is commit {commit}")
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(base).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return {"kind": "local", "path": str(base), "requested": requested, "commit": commit, "content_hash": h.hexdigest()}


def _snapshot_commit(base: Path) -> str | None:
    m = _SNAPSHOT.search(base.resolve().as_posix())
    return m.group(1) if m else None


def _download_metadata_commit(base: Path) -> str | None:
    """The commit ``huggingface-cli download --local-dir`` recorded (first line of each ``.metadata`` file)."""
    folder = base / ".cache" / "huggingface" / "download"
    commits = set()
    for meta in folder.rglob("*.metadata") if folder.is_dir() else ():
        try:
            first = meta.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        if COMMIT.match(first):
            commits.add(first)
    return commits.pop() if len(commits) == 1 else None


def revision_changes(recorded: Mapping[str, Mapping], current: Mapping[str, Mapping]) -> list[str]:
    """One line per task whose dataset revision differs between two runs' manifest.json ``tasks`` entries."""
    out = []
    for task, old in recorded.items():
        before, now = (old or {}).get("revision"), (current.get(task) or {}).get("revision")
        if not before:
            continue
        if not now:
            out.append(f"{task}: recorded {_said(before)}, now not read from a dataset")
            continue
        for key in ("commit", "content_hash"):
            if before.get(key) and before.get(key) != now.get(key):
                out.append(f"{task}: recorded {key} {before[key]}, now {now.get(key) or 'unknown'}")
                break
    return out


def _said(rev: Mapping) -> str:
    return f"commit {rev['commit']}" if rev.get("commit") else f"content hash {rev.get('content_hash')}"
