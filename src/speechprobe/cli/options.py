"""Options that several commands declare by hand (the settings' options are generated: ``generated``)."""

from __future__ import annotations

from dataclasses import dataclass

import click
import typer
from typer.core import TyperCommand

from ..config import ComputeOptions, RunConfig
from ..errors import ConfigError
from ..settings import setting
from .generated import option

CacheOpt = option(ComputeOptions, "cache")
DeviceOpt = option(ComputeOptions, "device")
JobsOpt = option(RunConfig, "n_jobs")


@dataclass
class Inputs:
    """What `run` and `extract` take besides the run's settings (see :func:`take_inputs`)."""

    baselines_only: bool = setting(False, "Run without --models: the hand-crafted baselines alone (see --baselines).")
    audio_column: str | None = setting(None, "Audio column of a dataset source.")
    label_column: str | None = setting(None, "Label column of a dataset source.")
    group_column: str | None = setting(None, "Speaker/session column of a dataset ('none': ungrouped).")


def analyses_list(value: str) -> str:
    """``--analyses``, checked against the analysis registry (imported by run, probe and demo alone, not for
    their help or other commands); ``list`` prints every analysis and exits."""
    from ..analysis.registry import choose, describe

    if value == "list":
        typer.echo(describe())
        raise typer.Exit(0)
    try:
        choose({}, value)
    except ConfigError as e:
        raise typer.BadParameter(str(e).partition(": ")[2]) from None
    return value


ANALYSES_HELP = "Edits of the analysis flags: +NAME, -NAME, NAME,... (only those), all, none; list: name them."
AnalysesOpt = typer.Option("", "--analyses", parser=analyses_list, metavar="LIST", help=ANALYSES_HELP)


class NamesAnalyses(TyperCommand):
    """A command taking ``--analyses``, whose help names the registered analyses (plugins included): read from
    the registry when the help is shown, so no other use of the command imports it."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ..analysis.registry import registered

        option = next(p for p in self.params if p.name == "analyses")
        option.help = f"{ANALYSES_HELP} Analyses: {', '.join(a.name for a in registered())}."
        super().format_options(ctx, formatter)


ResumeOpt = typer.Option(False, "--resume", help="Continue the run in --out (also one whose settings are unknown).")
OverwriteOpt = typer.Option(False, "--overwrite", help="Start the run in --out again, even one of other settings.")


def existing_mode(resume: bool, overwrite: bool) -> str:
    """What to do with a run already in --out (see speechprobe.rundir.RunDir.claim)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one")
    return "resume" if resume else "overwrite" if overwrite else "auto"


def take_inputs(settings: dict) -> dict[str, str] | None:
    """Take the :class:`Inputs` out of a command's ``settings``: ``--models`` is checked against
    ``--baselines-only``; returns the dataset's columns given (None: none)."""
    check_models(settings["models"], settings.pop("baselines_only"))
    return {k: settings.pop(f"{k}_column") for k in ("audio", "label", "group") if f"{k}_column" in settings} or None


def check_models(models: list[str], baselines_only: bool) -> None:
    """``--models`` is required unless ``--baselines-only`` says the user means to run the baselines alone."""
    if not models and not baselines_only:
        raise ConfigError(
            "--models is required (e.g. --models whisper-tiny.en; `speechprobe models` lists them); "
            "pass --baselines-only to run the baselines alone"
        )
    if models and baselines_only:
        raise ConfigError(f"--baselines-only excludes --models {','.join(models)}; pass one")
