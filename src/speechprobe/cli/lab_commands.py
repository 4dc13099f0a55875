"""The objective lab's commands: ``pretrain`` (one objective, one seed) and ``ablate`` (objectives x seeds, probed).

Their options are generated from the lab's settings (``speechprobe.lab.config``); docs/lab.md.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import ComputeOptions
from ..lab.ablate import AblateSettings
from ..lab.config import PretrainSettings, TrainSettings
from .app import app
from .generated import Options, with_settings
from .options import CacheOpt, OverwriteOpt
from .output import stdout

# Where the pre-training jobs run: the engine options of `run` and `finetune`, spelled the same (one job: no actors)
ENGINE = Options(ComputeOptions, only=("engine", "ray_address", "ray_actors"))
ONE_JOB_ENGINE = Options(ComputeOptions, only=("engine", "ray_address"))


def _engine(settings: dict) -> dict:
    """Take the engine options out of the flat ``settings``."""
    return {k: settings.pop(k) for k in ENGINE.only if k in settings}


def _validated(cls: type[PretrainSettings | AblateSettings], settings: dict) -> PretrainSettings | AblateSettings:
    """``cls`` from the flat options: the training fields as its ``train`` group; validated."""
    train = TrainSettings(**{k: settings.pop(k) for k in list(settings) if k in TrainSettings.__dataclass_fields__})
    cfg = cls(train=train, **settings)
    cfg.validate()
    return cfg


@app.command()
@with_settings(Options(PretrainSettings), ONE_JOB_ENGINE)
def pretrain(
    ctx: typer.Context,
    settings: dict,
    cache: Path | None = CacheOpt,
) -> None:
    """Pre-train a wav2vec2-style encoder with one objective; resumes an interrupted run (docs/lab.md)."""
    from ..cache import cache_root
    from ..lab.jobs import run_jobs

    engine = _engine(settings)
    (out,) = run_jobs([_validated(PretrainSettings, settings)], cache_root(cache), None, ctx.obj.progress, engine)
    stdout().print(f"checkpoint: {out} (use it as --models {out}; pretext loss: {out / 'pretext_loss.csv'})")


@app.command()
@with_settings(Options(AblateSettings), ENGINE)
def ablate(
    ctx: typer.Context,
    settings: dict,
    cache: Path | None = CacheOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Pre-train each objective with several seeds, probe them, report with the seed as the unit (docs/lab.md)."""
    from ..cache import cache_root
    from ..lab.ablate import ablate as run_ablate

    engine = _engine(settings)
    report = run_ablate(
        _validated(AblateSettings, settings),
        cache_root(cache),
        progress=ctx.obj.progress,
        existing="overwrite" if overwrite else "auto",
        engine=engine,
    )
    stdout().print(f"report: {report}")
