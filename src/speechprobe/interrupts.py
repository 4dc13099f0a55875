"""Interrupts that explain themselves, and runs that say what they resume.

:func:`handling` (the command line's entry point runs every command inside it) makes SIGINT and SIGTERM raise
:class:`Interrupted` in the main thread, except inside :func:`finishing_write` (every atomic write of
:mod:`.files`): there the signal waits until the write has renamed its file, so an interrupt never
costs a finished file. The stages record what they have saved with :func:`saved` (a ledger of one
phrase per stage); :func:`resume_line` turns it into the one line the command prints when it stops:
what was saved and the exact command that resumes. :func:`say` prints a line between progress bars
(the "resuming: ..." lines of a rerun).
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

_local = threading.local()  # depth of atomic writes in flight, per thread
_pending: list[int] = []  # signals that arrived during a write of the main thread
_ledger: dict[str, str] = {}  # stage -> what it has saved so far, in the order the stages ran
_raised: list[Interrupted] = []  # the interrupt raised in this command (Typer turns it into an exit status)
# Flags that must not be repeated to resume: --overwrite would start the run again.
NOT_REPEATED = ("--overwrite",)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``exit_code`` is 128 + the signal number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        _raised.append(self)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum: int, _frame) -> None:
    if getattr(_local, "depth", 0):  # the main thread is inside an atomic write: finish it first
        _pending.append(signum)
        return
    raise Interrupted(signum)


@contextmanager
def handling() -> Iterator[None]:
    """Inside: SIGINT and SIGTERM raise :class:`Interrupted` (after any atomic write in flight); the previous
    handlers come back after. A fresh ledger. In the main thread only (elsewhere: the ledger alone)."""
    forget()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@contextmanager
def finishing_write() -> Iterator[None]:
    """A block a signal does not cut: an interrupt that arrives inside it is raised when it ends."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
    if not _local.depth and _pending and threading.current_thread() is threading.main_thread():
        raise Interrupted(_pending.pop())


def saved(stage: str, what: str) -> None:
    """Record what ``stage`` has saved so far (a phrase such as ``"probes of 3 of 10 (model, task) pairs"``)."""
    _ledger[stage] = what


def forget() -> None:
    """Empty the ledger (a new command in the same process)."""
    _ledger.clear()
    _pending.clear()
    _raised.clear()


def raised() -> Interrupted | None:
    """The interrupt that stopped this command, if one did (also once Typer has turned it into exit 130)."""
    return _raised[0] if _raised else None


def resume_command(argv: Sequence[str]) -> str:
    """The command line that resumes ``argv`` (the arguments after the program name)."""
    return shlex.join(["speechprobe", *(a for a in argv if a not in NOT_REPEATED)])


def resume_line(err: BaseException, argv: Sequence[str]) -> str:
    """The one line printed when a command stops on ``err`` (an interrupt)."""
    name = signal.Signals(err.signum).name if isinstance(err, Interrupted) else "SIGINT"
    if not _ledger:
        return f"interrupted ({name}); nothing was saved yet; rerun: {resume_command(argv)}"
    return f"interrupted ({name}); saved: {'; '.join(_ledger.values())}; resume with: {resume_command(argv)}"


def say(line: str) -> None:
    """Print ``line`` on stderr without breaking a progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)
