"""The objective lab's commands: ``pretrain`` (one objective, one seed) and ``ablate`` (objectives x seeds, probed).

Their options are generated from the lab's settings (``speechprobe.lab.config``); docs/lab.md.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..lab.ablate import AblateSettings
from ..lab.config import PretrainSettings, TrainSettings
from .app import app
from .generated import Options, with_settings
from .options import CacheOpt, OverwriteOpt
from .output import stdout


def _validated(cls: type[PretrainSettings | AblateSettings], settings: dict) -> PretrainSettings | AblateSettings:
    """``cls`` from the flat options: the training fields as its ``train`` group; validated."""
    train = TrainSettings(**{k: settings.pop(k) for k in list(settings) if k in TrainSettings.__dataclass_fields__})
    cfg = cls(train=train, **settings)
    cfg.validate()
    return cfg


@app.command()
@with_settings(Options(PretrainSettings))
def pretrain(
    ctx: typer.Context,
    settings: dict,
    cache: Path | None = CacheOpt,
) -> None:
    """Pre-train a wav2vec2-style encoder with one objective; resumes an interrupted run (docs/lab.md)."""
    from ..cache import cache_root
    from ..lab.train import pretrain as run_pretrain

    out = run_pretrain(_validated(PretrainSettings, settings), cache_root(cache), progress=ctx.obj.progress)
    stdout().print(f"checkpoint: {out} (use it as --models {out}; pretext loss: {out / 'pretext_loss.csv'})")


@app.command()
@with_settings(Options(AblateSettings))
def ablate(
    ctx: typer.Context,
    settings: dict,
    cache: Path | None = CacheOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Pre-train each objective with several seeds, probe them, report with the seed as the unit (docs/lab.md)."""
    from ..cache import cache_root
    from ..lab.ablate import ablate as run_ablate

    report = run_ablate(
        _validated(AblateSettings, settings),
        cache_root(cache),
        progress=ctx.obj.progress,
        existing="overwrite" if overwrite else "auto",
    )
    stdout().print(f"report: {report}")
