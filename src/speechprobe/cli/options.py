"""Options that several commands declare by hand (the settings' options are generated: ``generated``)."""

from __future__ import annotations

import typer

from ..config import ComputeOptions, RunConfig
from ..errors import ConfigError
from .generated import option

CacheOpt = option(ComputeOptions, "cache")
DeviceOpt = option(ComputeOptions, "device")
JobsOpt = option(RunConfig, "n_jobs")
BaselinesOnlyOpt = typer.Option(
    False, "--baselines-only", help="Run without --models: the hand-crafted baselines alone (see --baselines)."
)
AudioColOpt = typer.Option(None, "--audio-column", help="Audio column of a dataset source.")
LabelColOpt = typer.Option(None, "--label-column", help="Label column of a dataset source.")
GroupColOpt = typer.Option(None, "--group-column", help="Speaker/session column of a dataset ('none': ungrouped).")


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
ResumeOpt = typer.Option(False, "--resume", help="Continue the run in --out (also one whose settings are unknown).")
OverwriteOpt = typer.Option(False, "--overwrite", help="Start the run in --out again, even one of other settings.")


def existing_mode(resume: bool, overwrite: bool) -> str:
    """What to do with a run already in --out (see speechprobe.rundir.RunDir.claim)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one")
    return "resume" if resume else "overwrite" if overwrite else "auto"


def dataset_columns(audio: str | None, label: str | None, group: str | None) -> dict[str, str | None] | None:
    cols = {"audio": audio, "label": label, "group": group}
    return {k: v for k, v in cols.items() if v is not None} or None


def check_models(models: list[str], baselines_only: bool) -> None:
    """``--models`` is required unless ``--baselines-only`` says the user means to run the baselines alone."""
    if not models and not baselines_only:
        raise ConfigError(
            "--models is required (e.g. --models whisper-tiny.en; `speechprobe models` lists them); "
            "pass --baselines-only to run the baselines alone"
        )
    if models and baselines_only:
        raise ConfigError(f"--baselines-only excludes --models {','.join(models)}; pass one")
