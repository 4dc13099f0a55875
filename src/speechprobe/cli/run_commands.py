"""The commands that run stages: run, zeroshot, extract, probe, demo.

Their settings' options are generated from the configuration's fields (``generated.with_settings``) and
arrive by flat name in ``settings``; every check is the configuration's ``validate()``, which runs before any
work.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import EXTRACT_FIELDS, NOT_NUMBERS, RunConfig
from ..finetune.settings import FinetuneSettings
from ..settings import flat_fields
from ..zeroshot.config import ZeroShotConfig
from .app import app, console
from .generated import Options, with_settings
from .options import (
    AnalysesOpt,
    Inputs,
    NamesAnalyses,
    OverwriteOpt,
    ResumeOpt,
    existing_mode,
    take_inputs,
)
from .output import print_best, print_zeroshot, stdout

DEMO_MODELS = ("whisper-tiny.en", "whisper-base")
DEMO_TASKS = ("accent", "stress", "speaker_count", "emotion", "gender")
# 5 x 5-fold CV of the KNN probe (exact, cheap), the cue analyses on the first partition: with each task's
# default size (24 voices) every best-layer interval is within about +-0.10 in under 5 minutes on 2 cores.
DEMO = {"out": Path("speechprobe_demo"), "window": "trimmed", "probes": "knn", "repeats": 5, "cue_repeats": 1}
DEMO |= {"n_jobs": 2, "erasure": True}  # trimmed: minutes on a CPU; LEACE cue erasure on in the demo
EXTRACT = (*EXTRACT_FIELDS, "out", "cache", "engine", "ray_address", "ray_actors", "cue_probes", "folds", "cv")
EXTRACT += ("ungrouped",)  # the fold options are checked before extracting and kept for `probe`
CUES = {"cue_probes": "--cues/--no-cues"}  # extract stores the cues for the cue probes
ANALYSES = ("embeddings", "fingerprints", "similarity", "mdl")  # the demo's switches besides erasure
# `probe RUN`: every setting that decides the probes or the analyses (the rest is RUN's)
PROBE = tuple(
    k for k in flat_fields(RunConfig) if k not in (*EXTRACT_FIELDS, *NOT_NUMBERS) or k in ("report", "group_name")
)


@app.command(cls=NamesAnalyses)
@with_settings(
    Options(RunConfig), Options(ZeroShotConfig, only=("prompts", "modes")), Options(Inputs), Options(FinetuneSettings)
)
def run(
    ctx: typer.Context,
    settings: dict,
    zeroshot: bool = typer.Option(False, "--zeroshot/--no-zeroshot", help="Also ask decoder models zero-shot."),
    analyses: str = AnalysesOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Extract, probe and report: the whole pipeline (zero-shot too with --zeroshot)."""
    from ..pipeline import run as run_pipeline
    from ..pipeline import validate
    from ..rundir import RunDir

    existing = existing_mode(resume, overwrite)
    asked = {k: settings.pop(k) for k in ("prompts", "modes")}
    tuning = {k: settings.pop(k) for k in flat_fields(FinetuneSettings) if k in settings}  # --finetune and its settings
    columns = take_inputs(settings)
    report = settings.pop("report")  # with zero-shot, the report comes once its rows are in
    cfg = RunConfig.of(
        **settings,
        report=report and not zeroshot and not tuning.get("finetune"),  # else once, at the end
        analyses=analyses,
        columns=columns,
        progress=ctx.obj.progress,
    )
    zs = None
    if zeroshot:  # its options are checked before any work too
        from ..analysis.registry import choose
        from ..zeroshot import resolve_prompts

        decoder = choose(vars(cfg.analyses), cfg.analyses.chosen)["decoder_layers"]  # its states come from zero-shot
        zs = ZeroShotConfig.from_run_config(cfg, **asked, decoder_states=decoder)
        zs.validate()
        resolve_prompts(zs.prompts)
    validate(cfg)  # before the lock creates --out
    with RunDir(cfg.out).lock():  # the run, its zero-shot stage and its report: one writer throughout
        run_pipeline(cfg, existing)
        if zs is not None:
            from ..decoder_stage import zeroshot_with_decoder_models
            from ..report import build_report

            zs_rows = zeroshot_with_decoder_models(zs, existing)
            if report and not tuning.get("finetune"):
                build_report(cfg.out, progress=cfg.compute.progress)
        if tuning.get("finetune"):  # after the probes (and zero-shot): the ladder reads them all
            from .finetune_commands import finetune_and_report

            finetune_and_report(cfg.out, tuning, existing, cfg.compute.progress, report)
    print_best(cfg.out)
    if zs is not None:
        print_zeroshot(zs_rows)


@app.command()
@with_settings(Options(ZeroShotConfig))
def zeroshot(ctx: typer.Context, settings: dict, resume: bool = ResumeOpt, overwrite: bool = OverwriteOpt) -> None:
    """Ask models with a text decoder (Whisper, Qwen2-Audio, SeamlessM4T v2) zero-shot."""
    from ..decoder_stage import zeroshot_with_decoder_models

    existing = existing_mode(resume, overwrite)
    cfg = ZeroShotConfig(**settings, progress=ctx.obj.progress)
    rows = zeroshot_with_decoder_models(cfg, existing)
    print_zeroshot(rows)
    for what in ("results.csv", "zeroshot_diagnostics.csv", "zeroshot_vs_probe.csv", "zeroshot_correlation.csv"):
        stdout().print(f"{what:>24}: {cfg.out / what}")


@app.command()
@with_settings(Options(RunConfig, only=EXTRACT, flags=CUES), Options(Inputs))
def extract(
    ctx: typer.Context,
    settings: dict,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Extract features only (into the feature store); `speechprobe probe RUN` continues.

    The fold options are checked against the classes and speakers before extracting, and kept for `probe`."""
    from ..pipeline import run_extract

    existing = existing_mode(resume, overwrite)
    columns = take_inputs(settings)
    cfg = RunConfig.of(**settings, columns=columns, progress=ctx.obj.progress)
    clips, state = run_extract(cfg, existing)
    n = sum(len(c) for c in clips.values())
    console.print(f"extracted {extracted_line(len(set(cfg.models)), len(state.models), len(clips), n)} -> {cfg.out}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def extracted_line(models: int, spaces: int, tasks: int, clips: int) -> str:
    """``1 model and 5 baselines x 1 task, 24 clips``: the models asked for, then the baselines beside them."""
    parts = [_count(models, "model")] if models else []
    parts += [_count(spaces - models, "baseline")] if spaces > models else []
    return f"{' and '.join(parts) or '0 models'} x {_count(tasks, 'task')}, {_count(clips, 'clip')}"


@app.command(cls=NamesAnalyses)
@with_settings(Options(RunConfig, only=PROBE, keep=True), Options(RunConfig, only=("n_jobs",)))
def probe(
    ctx: typer.Context,
    settings: dict,
    run_dir: Path = typer.Argument(..., help="Run directory written by `speechprobe extract`."),
    analyses: str = AnalysesOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Probe features already extracted into RUN (nothing is re-extracted); the seed is the run's, and
    options not given keep RUN's."""
    from ..pipeline import load_extracted, probe_and_report

    existing = existing_mode(resume, overwrite)
    cfg, clips, state = load_extracted(run_dir)
    chosen = ",".join(filter(None, [cfg.analyses.chosen, analyses]))  # edits on top of the run's
    cfg = cfg.updated(**settings, analyses=chosen, progress=ctx.obj.progress)
    probe_and_report(cfg, clips, state, existing)
    print_best(run_dir)


@app.command(cls=NamesAnalyses)
@with_settings(Options(RunConfig, only=(*DEMO, "n_per_class", "cache", "permutations", *ANALYSES), defaults=DEMO))
def demo(
    ctx: typer.Context,
    settings: dict,
    analyses: str = AnalysesOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Embedded offline default: real Whisper tiny.en + base and the baselines on the synthetic suite.

    Uses the trimmed window, the KNN probe and 5 x 5-fold CV (cue analyses on the first partition) so
    it finishes in minutes on a laptop CPU with every best-layer interval near +-0.10; pass --window
    full for the 30 s input Whisper was trained with, --probes knn,mlp for the MLP as well.
    """
    from ..pipeline import run as run_pipeline

    existing = existing_mode(resume, overwrite)
    cfg = RunConfig.of(
        models=list(DEMO_MODELS), tasks=list(DEMO_TASKS), **settings, analyses=analyses, progress=ctx.obj.progress
    )
    run_pipeline(cfg, existing)
    print_best(cfg.out)
