"""``speechprobe finetune RUN``: the fine-tuning ceiling on a probed run's own folds (docs/finetune.md).

``speechprobe run ... --finetune METHOD`` does the same after the probes (``run_commands``); both take the
settings of :class:`speechprobe.finetune.settings.FinetuneSettings` as generated options. ``finetune`` takes no
``--models/--tasks/--out`` of its own: its folds are a run's CV plan and its ladder reads the run's probes, so
fine-tuning from scratch is a run (``run --finetune``, with every run option), not a second copy of ``run``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import RunConfig
from ..errors import ConfigError
from ..finetune.settings import FinetuneSettings
from .app import app
from .generated import Options, with_settings
from .options import OverwriteOpt, ResumeOpt, existing_mode
from .output import stdout

# `speechprobe finetune RUN --method lora`: the method's option is --method here (--finetune on `run`)
FINETUNE_OPTIONS = Options(FinetuneSettings, defaults={"finetune": "lora"}, flags={"finetune": "--method"})
ENGINE = ("engine", "ray_address", "ray_actors")  # where the folds train [default: the run's engine]


def finetune_and_report(
    run_dir: Path,
    settings: dict,
    existing: str,
    progress: bool,
    report: bool | None = None,
    engine: dict | None = None,
) -> None:
    """Fine-tune ``run_dir`` with the flat ``settings``, then the ladder and the report (``report`` None: when the run
    writes one or had one; ``engine``: engine options over the run's)."""
    from ..finetune.stage import finish, run_finetune

    if report is None and (run_dir / "report.html").is_file():  # --overwrite removes it: written again after
        report = True
    rows = run_finetune(run_dir, FinetuneSettings.of(**settings), existing, progress, engine)
    finish(run_dir, progress, report)
    f1 = rows[rows["metric"] == "macro_f1"].groupby(["model", "task", "probe"])["value"].mean()
    for (model, task, probe), value in f1.items():
        stdout().print(f"{model} × {task} {probe}: Macro-F1 {value:.3f} (mean over folds)")


@app.command()
@with_settings(FINETUNE_OPTIONS, Options(RunConfig, only=ENGINE, keep=True))
def finetune(
    ctx: typer.Context,
    settings: dict,
    run_dir: Path = typer.Argument(..., help="A run directory written by `speechprobe run` (extracted and probed)."),
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Fine-tune the run's models on its own folds (lora, top-k or head) and add the ladder to its report."""
    from ..rundir import STATE

    if not (run_dir / STATE).is_file():
        raise ConfigError(
            f"{run_dir}: not a run directory (no {STATE}); to extract, probe and fine-tune in one go: "
            f"speechprobe run --models M --tasks T --out {run_dir} --finetune METHOD"
        )
    engine = {k: v for k in ENGINE if (v := settings.pop(k, None)) is not None}
    finetune_and_report(run_dir, settings, existing_mode(resume, overwrite), ctx.obj.progress, engine=engine)
