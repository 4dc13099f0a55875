"""The Typer app, the options every command takes in any position, and the entry point.

Exit status: 0 done; 1 a command found a problem (``reproduce`` DIFFERENT, ``cache verify
--check-only``); 2 an error, printed as one line (a traceback only with ``--debug``); 130 interrupted
(SIGINT), 143 terminated (SIGTERM), after one line saying what was saved and the command that resumes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import typer
from rich.console import Console

from ..errors import SpeechprobeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: readable at 80 columns
    help="What does each layer of a speech model know?",
)
console = Console(stderr=True)


@dataclass
class Globals:
    """Options every command takes, in any position."""

    debug: bool = False
    progress: bool = True


GLOBAL_FLAGS = {"--debug": ("debug", True), "--no-progress": ("progress", False), "--progress": ("progress", True)}


def split_global_flags(argv: Sequence[str]) -> tuple[Globals, list[str]]:
    """Take ``--debug`` / ``--[no-]progress`` out of ``argv`` wherever they are (up to ``--``)."""
    found, rest = Globals(), []
    for i, arg in enumerate(argv):
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in GLOBAL_FLAGS:
            setattr(found, *GLOBAL_FLAGS[arg])
        else:
            rest.append(arg)
    return found, rest


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"speechprobe {__version__}")
        raise typer.Exit()


def _setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("speechprobe").setLevel(logging.DEBUG if debug else logging.WARNING)


@app.callback()
def _main(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Full tracebacks and library warnings (any position)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars (any position)."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version, help="Show the version."),
) -> None:
    given = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    ctx.obj = Globals(debug=given.debug or debug, progress=given.progress and progress)
    _setup_logging(ctx.obj.debug)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one line (exit 2) unless --debug; the exit status is returned."""
    from .. import interrupts
    from ..files import is_disk_error

    given = list(sys.argv[1:] if argv is None else argv)
    flags, args = split_global_flags(given)
    _setup_logging(flags.debug)
    try:
        with interrupts.handling():
            code = app(args=args, obj=flags, standalone_mode=False, prog_name="speechprobe")
            if interrupts.raised() is not None:  # Typer returns 130 for a KeyboardInterrupt
                code = _interrupted(interrupts.raised(), given)
    except typer.Abort as e:  # click turns KeyboardInterrupt into Abort
        code = _interrupted(e.__cause__ or e, given)
    except typer.Exit as e:
        code = e.exit_code
    except typer.TyperException as e:  # unknown flags, bad values: a one-line usage error
        e.show()
        code = getattr(e, "exit_code", 2)
    except SpeechprobeError as e:
        if flags.debug:
            raise
        print(f"error: {e}", file=sys.stderr)  # one line, never wrapped
        code = 2
    except OSError as e:
        if flags.debug or not is_disk_error(e):
            raise
        where = f" {e.filename}" if e.filename else ""
        print(f"error: cannot write{where} ({e.strerror}); free space or choose a writable directory", file=sys.stderr)
        code = 2
    except KeyboardInterrupt as e:
        code = _interrupted(e, given)
    return int(code or 0)


def _interrupted(err: BaseException, argv: Sequence[str]) -> int:
    """One line: what was saved and the command that resumes; exit 128 + the signal (130 SIGINT, 143 SIGTERM)."""
    from ..interrupts import Interrupted, resume_line

    print(f"\n{resume_line(err, argv)}", file=sys.stderr, flush=True)
    return err.exit_code if isinstance(err, Interrupted) else 130
