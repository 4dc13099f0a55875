"""The ``speechprobe`` command line: a thin Typer layer over the Python API."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from . import cli_options as opts
from .cli_view import print_best, stdout
from .errors import SpeechprobeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="What does each layer of a speech model know?",
)
console = Console(stderr=True)
_DEBUG = {"on": False}
_CLICK_ERROR = typer.BadParameter.__mro__[2]  # Typer's (vendored) ClickException


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip() and v.strip().lower() != "none"]


ModelsOpt = typer.Option("", "--models", "-m", help="Comma-separated model names, local dirs or hub ids.")
TasksOpt = typer.Option(
    ...,
    "--tasks",
    "-t",
    help="Comma-separated: task names, NAME=DATASET_DIR, manifest CSVs, dataset folders or HF ids.",
)
AudioColOpt = typer.Option(None, "--audio-column", help="Audio column of a dataset source.")
LabelColOpt = typer.Option(None, "--label-column", help="Label column of a dataset source.")
GroupColOpt = typer.Option(None, "--group-column", help="Speaker/session column of a dataset ('none': ungrouped).")
SplitOpt = typer.Option(None, "--split", help="Dataset split (default: test, or the only one).")
OutOpt = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory.")
ProbesOpt = typer.Option("knn,mlp", "--probes", help="Probes: knn, mlp, linear.")
PrimaryOpt = typer.Option(
    "knn",
    "--primary-probe",
    help="The probe whose best layer is 'the best layer' in every table, test and finding (knn: exact, cheap null).",
)
FoldsOpt = typer.Option(5, "--folds", help="Cross-validation folds.")
SeedOpt = typer.Option(0, "--seed", help="Seed for data generation, folds and probes.")
WindowOpt = typer.Option("full", "--window", help="Whisper input: full (30 s, faithful) or trimmed (fast).")
PoolingOpt = typer.Option("mean", "--pooling", help="mean or mean+std over real frames.")
BaselinesOpt = typer.Option(
    None, "--baselines", help="Baselines, comma-separated (default: every default baseline; 'none' for none)."
)
CacheOpt = typer.Option(None, "--cache", help="Feature store / cache directory (default: user cache).")
DeviceOpt = typer.Option("cpu", "--device", help="cpu or cuda.")
DtypeOpt = typer.Option(
    None, "--dtype", help="Low-precision compute: bf16 (GPU, or a CPU with native bf16) or fp16 (GPU)."
)
RandomOpt = typer.Option(False, "--random-init", help="Same architectures with random weights (control).")
SizeOpt = typer.Option(None, "--n-per-class", help="Synthetic suite size per class.")
BatchOpt = typer.Option(
    None, "--max-batch-seconds", help="Padded audio seconds per batch (default: 120 on a CPU, 960 on a GPU)."
)
JobsOpt = typer.Option(1, "--jobs", "-j", help="Parallel probe jobs (joblib).")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")
PermOpt = typer.Option(
    1000,
    "--permutations",
    help=(
        "Label shuffles for the selection-aware test of each best layer and the empirical chance (0: skip). "
        "KNN re-votes cheaply; a refitted primary probe (mlp, linear) fits once per shuffle: lower it there."
    ),
)
EmbedOpt = typer.Option(True, "--embeddings/--no-embeddings", help="t-SNE/UMAP of the first, best and last layers.")
ReportOpt = typer.Option(True, "--report/--no-report", help="Write report.html at the end.")
FingerprintsOpt = typer.Option(
    True, "--fingerprints/--no-fingerprints", help="Depth fingerprints: 90 % and peak depth per model and task."
)
SimilarityOpt = typer.Option(
    True, "--similarity/--no-similarity", help="Layer similarity: debiased CKA and mutual k-NN between all layers."
)
MdlOpt = typer.Option(True, "--mdl/--no-mdl", help="MDL probes: online code length and compression per layer.")
EngineOpt = typer.Option(
    "local", "--engine", help="Engine: local, or ray (model actors on a Ray cluster; identical results)."
)
AddressOpt = typer.Option(
    None,
    "--address",
    help="With --engine ray: auto (the `ray start` cluster), HOST:PORT or ray://HOST:PORT; default: a new local Ray.",
)
ActorsOpt = typer.Option(
    None, "--ray-actors", help="With --engine ray: model actors (default: one per GPU, else per CPU but one)."
)
PromptsOpt = typer.Option(
    "all", "--prompts", help="Zero-shot prompt ids: all, instruction, choose, question, file:PATH."
)
ModeOpt = typer.Option("likelihood,generate", "--mode", help="Zero-shot scoring: likelihood, generate.")


def _config(**kw):
    from .config import RunConfig

    kw["models"], kw["tasks"] = _split(kw["models"]), _split(kw["tasks"])
    kw["probes"] = _split(kw["probes"])
    if kw.get("baselines") is None:  # the registry's default baselines
        kw.pop("baselines", None)
    else:
        kw["baselines"] = _split(kw["baselines"])
    cols = {
        "audio": kw.pop("audio_column", None),
        "label": kw.pop("label_column", None),
        "group": kw.pop("group_column", None),
    }
    kw["columns"] = {k: v for k, v in cols.items() if v is not None} or None
    return RunConfig(**kw)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    _DEBUG["on"] = debug
    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, format="%(levelname)s: %(message)s")


@app.command()
def run(
    models: str = ModelsOpt,
    tasks: str = TasksOpt,
    out: Path = OutOpt,
    probes: str = ProbesOpt,
    primary_probe: str = PrimaryOpt,
    folds: int = FoldsOpt,
    seed: int = SeedOpt,
    window: str = WindowOpt,
    pooling: str = PoolingOpt,
    baselines: str | None = BaselinesOpt,
    cache: Path | None = CacheOpt,
    device: str = DeviceOpt,
    dtype: str | None = DtypeOpt,
    random_init: bool = RandomOpt,
    n_per_class: int | None = SizeOpt,
    max_batch_seconds: float | None = BatchOpt,
    jobs: int = JobsOpt,
    audio_column: str | None = AudioColOpt,
    label_column: str | None = LabelColOpt,
    group_column: str | None = GroupColOpt,
    split: str | None = SplitOpt,
    permutations: int = PermOpt,
    embeddings: bool = EmbedOpt,
    fingerprints: bool = FingerprintsOpt,
    similarity: bool = SimilarityOpt,
    mdl: bool = MdlOpt,
    report: bool = ReportOpt,
    zeroshot: bool = typer.Option(False, "--zeroshot/--no-zeroshot", help="Also ask decoder models zero-shot."),
    prompts: str = PromptsOpt,
    mode: str = ModeOpt,
    progress: bool = ProgressOpt,
    engine: str = EngineOpt,
    ray_address: str | None = AddressOpt,
    ray_actors: int | None = ActorsOpt,
    repeats: int = opts.RepeatsOpt,
    cv: str = opts.CvOpt,
    ungrouped: bool = opts.UngroupedOpt,
    bootstrap: int = opts.BootstrapOpt,
    knn_k: int = opts.KnnKOpt,
    mlp_hidden: int = opts.MlpHiddenOpt,
    mlp_alpha: float = opts.MlpAlphaOpt,
    mlp_epochs: int = opts.MlpEpochsOpt,
    mlp_solver: str = opts.MlpSolverOpt,
    linear_c: float = opts.LinearCOpt,
    tune: bool = opts.TuneOpt,
) -> None:
    """Extract, probe and report: the whole pipeline (zero-shot too with --zeroshot)."""
    from .pipeline import run as run_pipeline

    cfg = _cfg_from(locals())
    cfg.report = report and not zeroshot  # with zero-shot, the report comes once its rows are in
    run_pipeline(cfg)
    if zeroshot:
        from .analysis import build_report
        from .pipeline import run_zeroshot_stage
        from .zeroshot import ZeroShotConfig

        run_zeroshot_stage(ZeroShotConfig.from_run_config(cfg, prompts=_split(prompts), modes=_split(mode)))
        if report:
            build_report(cfg.out)
    print_best(cfg.out)


@app.command()
def zeroshot(
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
        None, "--chat-template/--no-chat-template", help="Qwen2-Audio chat template."
    ),
    system_prompt: str | None = typer.Option(None, "--system-prompt", help="System prompt for chat models."),
    window: str = typer.Option("full", "--window", help="Whisper input: full (30 s) or trimmed."),
    progress: bool = ProgressOpt,
    engine: str = EngineOpt,
    ray_address: str | None = AddressOpt,
    ray_actors: int | None = ActorsOpt,
) -> None:
    """Ask models with a text decoder (Whisper, Qwen2-Audio, SeamlessM4T v2) zero-shot."""
    from .pipeline import run_zeroshot_stage
    from .zeroshot import ZeroShotConfig

    rows = run_zeroshot_stage(
        ZeroShotConfig(
            models=_split(models),
            tasks=_split(tasks),
            out=out,
            prompts=_split(prompts),
            modes=_split(mode),
            seed=seed,
            n_per_class=n_per_class,
            cache=cache,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            chat_template=chat_template,
            system_prompt=system_prompt,
            window=window,
            progress=progress,
            engine=engine,
            ray_address=ray_address,
            ray_actors=ray_actors,
        )
    )
    f1 = rows[rows.metric == "macro_f1"]
    view = Table("model", "task", "probe", "Macro-F1", title="Zero-shot")
    for r in f1.to_dict("records"):
        view.add_row(str(r["model"]), str(r["task"]), str(r["probe"]), f"{r['value']:.3f}")
    stdout().print(view)
    for what in ("results.csv", "zeroshot_diagnostics.csv", "zeroshot_vs_probe.csv", "zeroshot_correlation.csv"):
        stdout().print(f"{what:>24}: {out / what}")


def _cfg_from(args: dict):
    """A RunConfig from a command's parameters (``jobs`` is ``n_jobs``)."""
    from dataclasses import fields

    from .config import RunConfig

    names = {f.name for f in fields(RunConfig)} | {"audio_column", "label_column", "group_column"}
    args = {"n_jobs": args.get("jobs", 1), **{k: v for k, v in args.items() if k in names}}
    return _config(**args)


@app.command()
def extract(
    models: str = ModelsOpt,
    tasks: str = TasksOpt,
    out: Path = OutOpt,
    seed: int = SeedOpt,
    window: str = WindowOpt,
    pooling: str = PoolingOpt,
    baselines: str | None = BaselinesOpt,
    cache: Path | None = CacheOpt,
    device: str = DeviceOpt,
    dtype: str | None = DtypeOpt,
    random_init: bool = RandomOpt,
    n_per_class: int | None = SizeOpt,
    max_batch_seconds: float | None = BatchOpt,
    audio_column: str | None = AudioColOpt,
    label_column: str | None = LabelColOpt,
    group_column: str | None = GroupColOpt,
    split: str | None = SplitOpt,
    progress: bool = ProgressOpt,
    engine: str = EngineOpt,
    ray_address: str | None = AddressOpt,
    ray_actors: int | None = ActorsOpt,
    folds: int = FoldsOpt,
    cv: str = opts.CvOpt,
    ungrouped: bool = opts.UngroupedOpt,
) -> None:
    """Extract features only (into the feature store); `speechprobe probe RUN` continues.

    The fold options are checked against the classes and speakers before extracting, and kept for `probe`."""
    from .pipeline import run_extract

    clips, state = run_extract(_cfg_from(locals() | {"probes": "knn,mlp"}))
    n = sum(len(c) for c in clips.values())
    console.print(f"extracted {len(state.models)} model(s) x {len(clips)} task(s), {n} clips -> {out}")


@app.command()
def probe(
    run_dir: Path = typer.Argument(..., help="Run directory written by `speechprobe extract`."),
    probes: str | None = typer.Option(None, "--probes"),
    primary_probe: str | None = typer.Option(None, "--primary-probe", help=PrimaryOpt.help),
    folds: int | None = typer.Option(None, "--folds"),
    seed: int | None = typer.Option(None, "--seed"),
    jobs: int = JobsOpt,
    permutations: int = PermOpt,
    embeddings: bool = EmbedOpt,
    fingerprints: bool = FingerprintsOpt,
    similarity: bool = SimilarityOpt,
    mdl: bool = MdlOpt,
    report: bool = ReportOpt,
    progress: bool = ProgressOpt,
    repeats: int | None = opts.keep_run_value(opts.RepeatsOpt),
    cv: str | None = opts.keep_run_value(opts.CvOpt),
    ungrouped: bool | None = typer.Option(None, "--ungrouped/--grouped", help=opts.UngroupedOpt.help),
    bootstrap: int | None = opts.keep_run_value(opts.BootstrapOpt),
    knn_k: int | None = opts.keep_run_value(opts.KnnKOpt),
    mlp_hidden: int | None = opts.keep_run_value(opts.MlpHiddenOpt),
    mlp_alpha: float | None = opts.keep_run_value(opts.MlpAlphaOpt),
    mlp_epochs: int | None = opts.keep_run_value(opts.MlpEpochsOpt),
    mlp_solver: str | None = opts.keep_run_value(opts.MlpSolverOpt),
    linear_c: float | None = opts.keep_run_value(opts.LinearCOpt),
    tune: bool | None = opts.keep_run_value(opts.TuneOpt),
) -> None:
    """Probe features already extracted into RUN (nothing is re-extracted); options not given keep RUN's."""
    from .pipeline import load_extracted, probe_and_report

    given = {k: v for k, v in locals().items() if k in opts.CV_AND_PROBE_OPTIONS and v is not None}
    cfg, clips, state = load_extracted(run_dir)
    cfg.probes = _split(probes) or cfg.probes
    cfg.primary_probe = primary_probe or cfg.primary_probe
    cfg.folds = folds if folds is not None else cfg.folds
    cfg.seed = seed if seed is not None else cfg.seed
    for name, value in given.items():
        setattr(cfg, name, value)
    cfg.n_jobs, cfg.progress = jobs, progress
    cfg.permutations, cfg.embeddings, cfg.report = permutations, embeddings, report
    cfg.fingerprints, cfg.similarity, cfg.mdl = fingerprints, similarity, mdl
    cfg.validate()
    probe_and_report(cfg, clips, state)
    print_best(run_dir)


@app.command()
def demo(
    out: Path = typer.Option(Path("speechprobe_demo"), "--out", "-o", help="Run directory."),
    n_per_class: int | None = SizeOpt,
    window: str = typer.Option("trimmed", "--window", help="trimmed keeps the demo within minutes on a CPU."),
    cache: Path | None = CacheOpt,
    jobs: int = typer.Option(2, "--jobs", "-j"),
    permutations: int = PermOpt,
    embeddings: bool = EmbedOpt,
    fingerprints: bool = FingerprintsOpt,
    similarity: bool = SimilarityOpt,
    mdl: bool = MdlOpt,
    progress: bool = ProgressOpt,
) -> None:
    """Embedded offline default: real Whisper tiny.en + base and the baselines on the synthetic suite.

    Uses the ``trimmed`` window by default so it finishes in minutes on a laptop CPU; pass
    ``--window full`` for the 30 s input Whisper was trained with.
    """
    from .config import RunConfig
    from .pipeline import run as run_pipeline

    cfg = RunConfig(
        models=list(DEMO_MODELS),
        tasks=list(DEMO_TASKS),
        out=out,
        window=window,
        cache=cache,
        n_per_class=n_per_class,
        n_jobs=jobs,
        progress=progress,
        permutations=permutations,
        embeddings=embeddings,
        fingerprints=fingerprints,
        similarity=similarity,
        mdl=mdl,
    )
    run_pipeline(cfg)
    print_best(out)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    permutations: int = typer.Option(0, "--permutations", help="Run (more) permutations first; 0 keeps RUN's."),
    embeddings: bool = typer.Option(False, "--embeddings/--no-embeddings", help="Draw t-SNE/UMAP first."),
    primary_probe: str | None = typer.Option(
        None, "--primary-probe", help="Probe whose best layer is tested (default: the run's primary probe)."
    ),
    cache: Path | None = CacheOpt,
    jobs: int = JobsOpt,
    progress: bool = ProgressOpt,
) -> None:
    """Build RUN/report.html (self-contained), report.md and the main table (CSV, LaTeX)."""
    from .analysis import analyse_features, build_report, store_loader

    if permutations or embeddings:
        analyse_features(
            run_dir,
            store_loader(run_dir, cache),
            primary_probe=primary_probe,
            n_permutations=permutations,
            embeddings=embeddings,
            n_jobs=jobs,
            progress=progress,
        )
    stdout().print(f"report: {build_report(run_dir)}")


@app.command()
def reproduce(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the rerun."),
) -> None:
    """Rerun RUN from its manifest.json into --out and report any difference in results.csv."""
    from .pipeline import reproduce as reproduce_run

    rep = reproduce_run(run_dir, out)
    for lib, (old, new) in rep.version_changes.items():
        console.print(f"note: {lib} was {old}, now {new}")
    if rep.identical:
        stdout().print(f"identical: all {rep.rows} rows of results.csv match {run_dir}")
        return
    stdout().print(f"DIFFERENT: {rep.differing_rows} of {rep.rows} rows differ (max |diff| {rep.max_abs_diff:.3g})")
    raise typer.Exit(1)


cache_app = typer.Typer(help="Inspect and repair the feature store.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("verify")
def cache_verify(
    cache: Path | None = CacheOpt,
    repair: bool = typer.Option(True, "--repair/--check-only", help="Delete torn and orphan entries."),
) -> None:
    """Find torn items and orphan temp files in the feature store (and repair them).

    Run it while no extraction is writing to the same store: in-flight temp files look orphaned.
    """
    from .cache import cache_root
    from .features.store import FeatureStore

    store = FeatureStore(cache_root(cache) / "features")
    rep = store.verify(repair=repair)
    verb = "removed" if repair else "found"
    stdout().print(
        f"{store.root}: {rep.items} items; {len(rep.torn)} torn and {len(rep.orphans)} orphan entries {verb}"
    )
    for p in (*rep.torn, *rep.orphans):
        stdout().print(f"  {verb}: {p}")
    if not rep.ok and not repair:
        raise typer.Exit(1)


DEMO_MODELS = ("whisper-tiny.en", "whisper-base")
DEMO_TASKS = ("accent", "stress", "speaker_count", "emotion", "gender")


@app.command()
def models() -> None:
    """List registered models with layer counts, hidden sizes, sample rates, sources and what layer 0 is."""
    from .models.registry import checkpoints, families

    fams = families()
    table = Table("name", "family", "layers", "hidden", "rate", "source", "layer 0")
    for c in checkpoints().values():
        fam = fams[c.family]
        if fam.source:
            source = fam.source
        elif c.packaged:
            source = f"package (offline){' or ' + c.hub_id if c.hub_id else ''}"
        else:
            source = c.hub_id or c.name
        row = [c.name, c.family, str(c.num_layers or "?"), str(c.hidden_size or "?"), str(c.sample_rate), source]
        table.add_row(*row, fam.layer0)
    stdout().print(table)


@app.command()
def tasks(details: bool = typer.Option(False, "--details", help="Show each task's datasheet line.")) -> None:
    """List registered tasks with their label sets."""
    from .data.registry import registered_tasks

    table = Table("name", "source", "paralinguistic", "labels", *(["cue"] if details else []))
    for t in registered_tasks().values():
        row = [t.name, t.source, "yes" if t.paralinguistic else "no", ", ".join(t.labels)]
        table.add_row(*row, *([t.cue] if details else []))
    stdout().print(table)


def main() -> None:
    """Entry point: user errors become one line (exit 2) unless --debug."""
    try:
        app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except _CLICK_ERROR as e:  # unknown flags, bad values: a one-line usage error
        e.show()
        sys.exit(e.exit_code)
    except SpeechprobeError as e:
        if _DEBUG["on"]:
            raise
        print(f"error: {e}", file=sys.stderr)  # one line, never wrapped
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
