"""The ``speechprobe`` command line: a thin Typer layer over the Python API.

Each command maps its options onto a configuration explicitly and leaves every check to the
configuration's ``validate()``, which runs before any work. ``--debug`` and ``--no-progress`` are
accepted in any position by every command (:func:`split_global_flags`). Errors are one line
(exit 2); a command that finds a problem (``reproduce`` DIFFERENT, ``cache verify --check-only``)
exits 1; an interrupted run exits 130.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, SpeechprobeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: readable at 80 columns
    help="What does each layer of a speech model know?",
)
console = Console(stderr=True)
DEMO_MODELS = ("whisper-tiny.en", "whisper-base")
DEMO_TASKS = ("accent", "stress", "speaker_count", "emotion", "gender")


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


def _stdout() -> Console:
    """Standard output; wide when piped so tables stay greppable."""
    return Console() if sys.stdout.isatty() else Console(width=240)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip() and v.strip().lower() != "none"]


ModelsOpt = typer.Option("", "--models", "-m", help="Comma-separated names, local dirs or hub ids [default: none].")
TasksOpt = typer.Option(
    ..., "--tasks", "-t", help="Comma-separated task names, NAME=DIR, manifest CSVs, dataset folders or HF ids."
)
AudioColOpt = typer.Option(None, "--audio-column", help="Audio column of a dataset source.")
LabelColOpt = typer.Option(None, "--label-column", help="Label column of a dataset source.")
GroupColOpt = typer.Option(None, "--group-column", help="Speaker/session column of a dataset ('none': ungrouped).")
SplitOpt = typer.Option(None, "--split", help="Dataset split [default: test, or the only one].")
OutOpt = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory.")
ProbesOpt = typer.Option("knn,mlp", "--probes", help="Probes: knn, mlp, linear.")
FoldsOpt = typer.Option(5, "--folds", help="Cross-validation folds.")
SeedOpt = typer.Option(0, "--seed", help="Seed for data generation, folds and probes (0 to 2^32-1).")
WindowOpt = typer.Option("full", "--window", help="Whisper input: full (30 s, faithful) or trimmed (fast).")
PoolingOpt = typer.Option("mean", "--pooling", help="mean or mean+std over real frames.")
BaselinesOpt = typer.Option("mfcc,librosa", "--baselines", help="Hand-crafted baselines ('none' for none).")
CacheOpt = typer.Option(None, "--cache", help="The one cache root [default: $SPEECHPROBE_CACHE, else the user cache].")
DeviceOpt = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
DtypeOpt = typer.Option(None, "--dtype", help="bf16 (GPU, or a CPU with native bf16) or fp16 (GPU) [default: float32].")
RandomOpt = typer.Option(False, "--random-init", help="Same architectures with random weights (control).")
SizeOpt = typer.Option(None, "--n-per-class", help="Synthetic clips per class [default: each task's own, 12-40].")
BatchOpt = typer.Option(
    None, "--max-batch-seconds", help="Padded audio seconds per batch [default: 120 on a CPU, 960 on a GPU]."
)
ClipOpt = typer.Option(600.0, "--max-clip-seconds", help="Audio decoded per clip; longer clips are cut and counted.")
DupOpt = typer.Option(False, "--drop-duplicates", help="Drop repeated audio (default: keep copies in one group).")
JobsOpt = typer.Option(1, "--jobs", "-j", help="Parallel probe jobs (joblib; -1: one per CPU).")
PermOpt = typer.Option(100, "--permutations", help="Permutation test of each best layer (0: skip, with the control).")
EmbedOpt = typer.Option(True, "--embeddings/--no-embeddings", help="t-SNE/UMAP of the first, best and last layers.")
ReportOpt = typer.Option(True, "--report/--no-report", help="Write report.html at the end.")
EngineOpt = typer.Option("local", "--engine", help="local, or ray (model actors on a Ray cluster; same results).")
AddressOpt = typer.Option(
    None, "--address", help="With --engine ray: auto, HOST:PORT or ray://HOST:PORT [default: a new local Ray]."
)
ActorsOpt = typer.Option(
    None, "--ray-actors", help="With --engine ray: model actors [default: one per GPU, else per CPU but one]."
)
PromptsOpt = typer.Option("all", "--prompts", help="Zero-shot prompts: all, instruction, choose, question, file:PATH.")
ModeOpt = typer.Option("likelihood,generate", "--mode", help="Zero-shot scoring: likelihood, generate.")
ResumeOpt = typer.Option(False, "--resume", help="Continue the run in --out, also one of unknown settings.")
OverwriteOpt = typer.Option(False, "--overwrite", help="Replace the run in --out (its settings differ).")


def _existing(resume: bool, overwrite: bool) -> str:
    """What to do with a run already in --out (see speechprobe.rundir.RunDir.claim)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one")
    return "resume" if resume else "overwrite" if overwrite else "auto"


def _columns(audio: str | None, label: str | None, group: str | None) -> dict[str, str | None] | None:
    cols = {"audio": audio, "label": label, "group": group}
    return {k: v for k, v in cols.items() if v is not None} or None


def _compute(ctx: typer.Context, device, dtype, window, seed, cache, engine="local", address=None, actors=None) -> dict:
    """The ComputeOptions fields, from a command's options and the global flags."""
    return dict(
        device=device,
        dtype=dtype,
        window=window,
        seed=seed,
        cache=cache,
        engine=engine,
        ray_address=address,
        ray_actors=actors,
        progress=ctx.obj.progress,
    )


def _version(value: bool) -> None:
    if value:
        from . import __version__

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


@app.command()
def run(
    ctx: typer.Context,
    models: str = ModelsOpt,
    tasks: str = TasksOpt,
    out: Path = OutOpt,
    probes: str = ProbesOpt,
    folds: int = FoldsOpt,
    seed: int = SeedOpt,
    window: str = WindowOpt,
    pooling: str = PoolingOpt,
    baselines: str = BaselinesOpt,
    cache: Path | None = CacheOpt,
    device: str = DeviceOpt,
    dtype: str | None = DtypeOpt,
    random_init: bool = RandomOpt,
    n_per_class: int | None = SizeOpt,
    max_batch_seconds: float | None = BatchOpt,
    max_clip_seconds: float = ClipOpt,
    drop_duplicates: bool = DupOpt,
    jobs: int = JobsOpt,
    audio_column: str | None = AudioColOpt,
    label_column: str | None = LabelColOpt,
    group_column: str | None = GroupColOpt,
    split: str | None = SplitOpt,
    permutations: int = PermOpt,
    embeddings: bool = EmbedOpt,
    report: bool = ReportOpt,
    zeroshot: bool = typer.Option(False, "--zeroshot/--no-zeroshot", help="Also ask decoder models zero-shot."),
    prompts: str = PromptsOpt,
    mode: str = ModeOpt,
    engine: str = EngineOpt,
    ray_address: str | None = AddressOpt,
    ray_actors: int | None = ActorsOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Extract, probe and report: the whole pipeline (zero-shot too with --zeroshot)."""
    from .config import RunConfig
    from .pipeline import run as run_pipeline

    existing = _existing(resume, overwrite)
    cfg = RunConfig(
        models=_split(models),
        tasks=_split(tasks),
        out=out,
        probes=_split(probes),
        folds=folds,
        pooling=pooling,
        baselines=_split(baselines),
        random_init=random_init,
        n_per_class=n_per_class,
        max_batch_seconds=max_batch_seconds,
        max_clip_seconds=max_clip_seconds,
        drop_duplicates=drop_duplicates,
        n_jobs=jobs,
        columns=_columns(audio_column, label_column, group_column),
        split=split,
        permutations=permutations,
        embeddings=embeddings,
        report=report and not zeroshot,  # with zero-shot, the report comes once its rows are in
        **_compute(ctx, device, dtype, window, seed, cache, engine, ray_address, ray_actors),
    )
    zs = None
    if zeroshot:  # its options are checked before any work too
        from .zeroshot import ZeroShotConfig, resolve_prompts

        zs = ZeroShotConfig.from_run_config(cfg, prompts=_split(prompts), modes=_split(mode))
        zs.validate()
        resolve_prompts(zs.prompts)
    results = run_pipeline(cfg, existing)
    if zs is not None:
        from .analysis import build_report
        from .zeroshot import run_zeroshot

        run_zeroshot(zs, existing)
        if report:
            build_report(cfg.out)
    _print_best(results, cfg.out)


@app.command()
def zeroshot(
    ctx: typer.Context,
    models: str = ModelsOpt,
    tasks: str = TasksOpt,
    out: Path = OutOpt,
    prompts: str = PromptsOpt,
    mode: str = ModeOpt,
    seed: int = SeedOpt,
    n_per_class: int | None = SizeOpt,
    cache: Path | None = CacheOpt,
    device: str = DeviceOpt,
    dtype: str | None = DtypeOpt,
    batch_size: int = typer.Option(8, "--batch-size", help="Clips per generation/scoring batch."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Greedy generation length."),
    chat_template: bool | None = typer.Option(
        None, "--chat-template/--no-chat-template", help="Qwen2-Audio chat template [default: on for Instruct]."
    ),
    system_prompt: str | None = typer.Option(None, "--system-prompt", help="System prompt for chat models."),
    window: str = typer.Option("full", "--window", help="Whisper input: full (30 s) or trimmed."),
    engine: str = EngineOpt,
    ray_address: str | None = AddressOpt,
    ray_actors: int | None = ActorsOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Ask models with a text decoder (Whisper, Qwen2-Audio, SeamlessM4T v2) zero-shot."""
    from .zeroshot import ZeroShotConfig, run_zeroshot

    existing = _existing(resume, overwrite)
    cfg = ZeroShotConfig(
        models=_split(models),
        tasks=_split(tasks),
        out=out,
        prompts=_split(prompts),
        modes=_split(mode),
        n_per_class=n_per_class,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        chat_template=chat_template,
        system_prompt=system_prompt,
        **_compute(ctx, device, dtype, window, seed, cache, engine, ray_address, ray_actors),
    )
    rows = run_zeroshot(cfg, existing)
    f1 = rows[rows.metric == "macro_f1"]
    view = Table("model", "task", "probe", "Macro-F1", title="Zero-shot")
    for r in f1.to_dict("records"):
        view.add_row(str(r["model"]), str(r["task"]), str(r["probe"]), f"{r['value']:.3f}")
    _stdout().print(view)
    for what in ("results.csv", "zeroshot_sensitivity.csv", "zeroshot_vs_probe.csv"):
        _stdout().print(f"{what:>24}: {out / what}")


@app.command()
def extract(
    ctx: typer.Context,
    models: str = ModelsOpt,
    tasks: str = TasksOpt,
    out: Path = OutOpt,
    seed: int = SeedOpt,
    window: str = WindowOpt,
    pooling: str = PoolingOpt,
    baselines: str = BaselinesOpt,
    cache: Path | None = CacheOpt,
    device: str = DeviceOpt,
    dtype: str | None = DtypeOpt,
    random_init: bool = RandomOpt,
    n_per_class: int | None = SizeOpt,
    max_batch_seconds: float | None = BatchOpt,
    max_clip_seconds: float = ClipOpt,
    drop_duplicates: bool = DupOpt,
    audio_column: str | None = AudioColOpt,
    label_column: str | None = LabelColOpt,
    group_column: str | None = GroupColOpt,
    split: str | None = SplitOpt,
    engine: str = EngineOpt,
    ray_address: str | None = AddressOpt,
    ray_actors: int | None = ActorsOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Extract features only (into the feature store); `speechprobe probe RUN` continues."""
    from .config import RunConfig
    from .pipeline import run_extract

    existing = _existing(resume, overwrite)
    cfg = RunConfig(
        models=_split(models),
        tasks=_split(tasks),
        out=out,
        pooling=pooling,
        baselines=_split(baselines),
        random_init=random_init,
        n_per_class=n_per_class,
        max_batch_seconds=max_batch_seconds,
        max_clip_seconds=max_clip_seconds,
        drop_duplicates=drop_duplicates,
        columns=_columns(audio_column, label_column, group_column),
        split=split,
        **_compute(ctx, device, dtype, window, seed, cache, engine, ray_address, ray_actors),
    )
    clips, state = run_extract(cfg, existing)
    n = sum(len(c) for c in clips.values())
    console.print(f"extracted {len(state.models)} model(s) x {len(clips)} task(s), {n} clips -> {out}")


@app.command()
def probe(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Run directory written by `speechprobe extract`."),
    probes: str | None = typer.Option(None, "--probes", help="Probes: knn, mlp, linear [default: the run's]."),
    folds: int | None = typer.Option(None, "--folds", help="Cross-validation folds [default: the run's]."),
    jobs: int = JobsOpt,
    permutations: int | None = typer.Option(None, "--permutations", help="Permutations [default: the run's]."),
    embeddings: bool | None = typer.Option(None, "--embeddings/--no-embeddings", help="[default: the run's]."),
    report: bool | None = typer.Option(None, "--report/--no-report", help="[default: the run's]."),
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Probe features already extracted into RUN (nothing is re-extracted); the seed is the run's."""
    from .pipeline import load_extracted, probe_and_report

    existing = _existing(resume, overwrite)
    cfg, clips, state = load_extracted(run_dir)
    cfg.probes = _split(probes) if probes is not None else cfg.probes
    cfg.folds = folds if folds is not None else cfg.folds
    cfg.permutations = permutations if permutations is not None else cfg.permutations
    cfg.embeddings = embeddings if embeddings is not None else cfg.embeddings
    cfg.report = report if report is not None else cfg.report
    cfg.n_jobs, cfg.progress = jobs, ctx.obj.progress
    _print_best(probe_and_report(cfg, clips, state, existing), run_dir)


@app.command()
def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("speechprobe_demo"), "--out", "-o", help="Run directory."),
    n_per_class: int | None = SizeOpt,
    window: str = typer.Option("trimmed", "--window", help="trimmed keeps the demo within minutes on a CPU."),
    cache: Path | None = CacheOpt,
    jobs: int = typer.Option(2, "--jobs", "-j", help="Parallel probe jobs."),
    permutations: int = PermOpt,
    embeddings: bool = EmbedOpt,
    resume: bool = ResumeOpt,
    overwrite: bool = OverwriteOpt,
) -> None:
    """Embedded offline default: real Whisper tiny.en + base and librosa baselines on the synthetic suite.

    Uses the trimmed window by default so it finishes in minutes on a laptop CPU; pass --window full
    for the 30 s input Whisper was trained with.
    """
    from .config import RunConfig
    from .pipeline import run as run_pipeline

    existing = _existing(resume, overwrite)
    cfg = RunConfig(
        models=list(DEMO_MODELS),
        tasks=list(DEMO_TASKS),
        out=out,
        n_per_class=n_per_class,
        n_jobs=jobs,
        permutations=permutations,
        embeddings=embeddings,
        **_compute(ctx, "cpu", None, window, 0, cache),
    )
    _print_best(run_pipeline(cfg, existing), out)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    permutations: int = typer.Option(0, "--permutations", help="Run (more) permutations first; 0 keeps RUN's."),
    embeddings: bool = typer.Option(False, "--embeddings/--no-embeddings", help="Draw t-SNE/UMAP first."),
    probe: str = typer.Option("knn", "--probe", help="Probe for the permutation test and control task."),
    cache: Path | None = CacheOpt,
    jobs: int = JobsOpt,
) -> None:
    """Build RUN/report.html (self-contained), report.md and the main table (CSV, LaTeX)."""
    from .analysis import analyse_features, build_report, store_loader
    from .config import check_positive
    from .warnlog import capture_warnings

    check_positive(permutations, "--permutations", 0, integer=True)
    if jobs != -1 and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: use 1 or more parallel jobs (-1: one per CPU)")
    if not Path(run_dir).is_dir():
        raise SpeechprobeError(f"{run_dir}: no such run directory")
    with capture_warnings():
        if permutations or embeddings:
            analyse_features(
                run_dir,
                store_loader(run_dir, cache),
                probe=probe,
                n_permutations=permutations,
                control=bool(permutations),
                embeddings=embeddings,
                n_jobs=jobs,
            )
        _stdout().print(f"report: {build_report(run_dir)}")


@app.command()
def reproduce(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="A new directory for the rerun."),
) -> None:
    """Rerun RUN from its manifest.json into --out and report any difference in results.csv (exit 1)."""
    from .pipeline import reproduce as reproduce_run

    rep = reproduce_run(run_dir, out)
    for lib, (old, new) in rep.version_changes.items():
        console.print(f"note: {lib} was {old}, now {new}")
    if rep.identical:
        _stdout().print(f"identical: all {rep.rows} rows of results.csv match {run_dir}")
        return
    _stdout().print(f"DIFFERENT: {rep.differing_rows} of {rep.rows} rows differ (max |diff| {rep.max_abs_diff:.3g})")
    raise typer.Exit(1)


cache_app = typer.Typer(help="Inspect and repair the feature store.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


@cache_app.command("verify")
def cache_verify(
    cache: Path | None = CacheOpt,
    repair: bool = typer.Option(True, "--repair/--check-only", help="Delete bad items and temp leftovers."),
) -> None:
    """Check every feature item (length, checksum, shape) and find temp leftovers; exit 1 if --check-only finds any.

    Run it while no extraction is writing to the same store: in-flight temp files look orphaned.
    """
    from .cache import cache_root
    from .features.store import FeatureStore

    store = FeatureStore(cache_root(cache) / "features")
    rep = store.verify(repair=repair)
    verb = "removed" if repair else "found"
    _stdout().print(
        f"{store.root}: {rep.items} items; {len(rep.torn)} torn, {len(rep.corrupt)} failing their checksum, "
        f"{len(rep.unverified)} without a checksum and {len(rep.orphans)} temp leftovers {verb}"
    )
    for p in rep.bad:
        _stdout().print(f"  {verb}: {p}")
    if not rep.ok and not repair:
        raise typer.Exit(1)


@app.command()
def models() -> None:
    """List registered models with layer counts, hidden sizes, sample rates and sources."""
    from .models.registry import MODELS

    table = Table("name", "family", "layers", "hidden", "rate", "source")
    for s in MODELS.values():
        if s.family == "handcrafted":
            source = "librosa"
        elif s.packaged:
            source = f"package (offline){' or ' + s.hub_id if s.hub_id else ''}"
        else:
            source = s.hub_id or s.name
        table.add_row(s.name, s.family, str(s.num_layers or "?"), str(s.hidden_size or "?"), str(s.sample_rate), source)
    _stdout().print(table)


@app.command()
def tasks(details: bool = typer.Option(False, "--details", help="Show each task's datasheet line.")) -> None:
    """List registered tasks with their label sets."""
    from .data.tasks import registered_tasks

    table = Table("name", "source", "paralinguistic", "labels", *(["cue"] if details else []))
    for t in registered_tasks().values():
        row = [t.name, t.source, "yes" if t.paralinguistic else "no", ", ".join(t.labels)]
        table.add_row(*row, *([t.cue] if details else []))
    _stdout().print(table)


def _print_best(results, out: Path) -> None:
    """The best layer per (model, task) beside the baselines, and where the outputs are."""
    from .analysis import best_table, summarize

    table = best_table(summarize(results))
    base = [c for c in ("mfcc", "librosa") if c in table and table[c].notna().any()]
    view = Table("model", "task", "probe", "layer", "depth", "Macro-F1 (95% CI)", *base, title="Best layer per task")
    for r in table.to_dict("records"):
        view.add_row(
            str(r["model"]),
            str(r["task"]),
            str(r["probe"]),
            str(r["layer"]),
            f"{r['relative_depth']:.2f}",
            f"{r['macro_f1']:.3f} ± {r['ci95']:.3f}",
            *[f"{r[c]:.3f}" for c in base],
        )
    out_console = _stdout()
    out_console.print(view)
    for what in ("results.csv", "summary.csv", "figures", "manifest.json", "report.html"):
        out_console.print(f"{what:>14}: {out / what}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one line (exit 2) unless --debug; the exit status is returned."""
    from .files import is_disk_error

    flags, args = split_global_flags(sys.argv[1:] if argv is None else argv)
    _setup_logging(flags.debug)
    try:
        code = app(args=args, obj=flags, standalone_mode=False, prog_name="speechprobe")
    except typer.Abort:
        code = _interrupted()
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
    except KeyboardInterrupt:
        code = _interrupted()
    return int(code or 0)


def _interrupted() -> int:
    console.print("interrupted; rerun the same command to resume")
    return 130


if __name__ == "__main__":
    sys.exit(main())
