"""One writer per run directory: an exclusive lock held for a whole command.

:func:`hold` takes ``ROOT/.speechprobe.lock`` with ``filelock`` (an ``flock`` on Linux and macOS)
and records the holder in ``ROOT/.speechprobe.lock.json`` (pid, host, start time, command). A
second process that finds the lock held stops at once with a one-line :class:`RunDirBusy` naming
the holder's pid; it does not wait (a run takes minutes to hours, and a queued run would then write
over the first one's results). The operating system drops an ``flock`` when its process ends,
however it ends (``kill -9`` included), so the lock of a dead process never blocks: the next run
takes it and overwrites the holder file. The empty ``.speechprobe.lock`` stays in the directory.

The lock is re-entrant within the thread that holds it (a command's stages nest their holds);
another thread of the same process is refused like another process.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import SpeechprobeError
from .files import atomic_write, write_error

LOCK = ".speechprobe.lock"
HOLDER = ".speechprobe.lock.json"
PATIENCE = 2.0  # seconds a refused run waits for the holder's record to name a live process

_held: dict[str, list] = {}  # resolved root -> [FileLock, depth, thread id]
_guard = threading.Lock()


class RunDirBusy(SpeechprobeError):
    """Another process (or thread) is writing the run directory."""


@contextmanager
def hold(root: Path) -> Iterator[None]:
    """Hold the run directory ``root`` (which must exist) for the duration; :class:`RunDirBusy` if taken."""
    key = str(Path(root).resolve())
    with _guard:
        entry = _held.get(key)
        if entry is not None and entry[2] != threading.get_ident():
            raise RunDirBusy(busy_message(Path(root)))
        if entry is None:
            entry = [_acquire(Path(root)), 0, threading.get_ident()]
            _held[key] = entry
        entry[1] += 1
    try:
        yield
    finally:
        with _guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                try:
                    Path(root, HOLDER).unlink(missing_ok=True)
                finally:
                    entry[0].release()


def _acquire(root: Path) -> FileLock:
    lock = FileLock(root / LOCK, thread_local=False)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise RunDirBusy(busy_message(root)) from None
    except OSError as e:
        raise write_error(e, root, "pass another --out") from None
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
        "command": " ".join(["speechprobe", *sys.argv[1:]])[:200],
    }
    try:
        atomic_write(root / HOLDER, json.dumps(holder).encode())
    except SpeechprobeError:
        lock.release()
        raise
    return lock


def busy_message(root: Path) -> str:
    """The one line for a run directory held by someone else, naming the holder's pid.

    The holder writes its record just after taking the lock, and a killed holder's record stays
    behind, so a record that is missing or names a dead process here is read again for up to
    :data:`PATIENCE` seconds before the pid is called unknown.
    """
    deadline = time.monotonic() + PATIENCE
    holder = _holder(root)
    while holder is None and time.monotonic() < deadline:
        time.sleep(0.05)
        holder = _holder(root)
    who = (
        "pid unknown"
        if holder is None
        else (f"pid {holder['pid']} on {holder['host']}, since {holder['since']}: {holder['command']}")
    )
    return f"{root} is being written by another speechprobe run ({who}); wait for it to finish or pass another --out"


def _holder(root: Path) -> dict | None:
    """The holder record of ``root`` if it names a live process (on another host: assumed live)."""
    try:
        holder = json.loads((root / HOLDER).read_text(encoding="utf-8"))
        pid, host = int(holder["pid"]), holder["host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not {"since", "command"} <= holder.keys():
        return None
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
    return holder
