"""Options shared by several commands, and their explicit mapping onto configurations."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ConfigError


def split_pairs(value: str | None, option: str) -> dict[str, str]:
    """``A=x,B=y`` as a dict; a malformed entry is a one-line error naming the option."""
    out = {}
    for item in split_list(value):
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ConfigError(f"{option} {item!r}: expected TASK=FILE")
        out[key.strip()] = val.strip()
    return out


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip() and v.strip().lower() != "none"]


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
ModelsOpt = typer.Option(
    "", "--models", "-m", help="Comma-separated names, local dirs or hub ids (required unless --baselines-only)."
)
BaselinesOnlyOpt = typer.Option(
    False, "--baselines-only", help="Run without --models: the hand-crafted baselines alone (see --baselines)."
)
TasksOpt = typer.Option(
    ..., "--tasks", "-t", help="Comma-separated task names, NAME=DIR, manifest CSVs, dataset folders or HF ids."
)
AudioColOpt = typer.Option(None, "--audio-column", help="Audio column of a dataset source.")
LabelColOpt = typer.Option(None, "--label-column", help="Label column of a dataset source.")
GroupColOpt = typer.Option(None, "--group-column", help="Speaker/session column of a dataset ('none': ungrouped).")
SplitOpt = typer.Option(None, "--split", help="Dataset split [default: test, or the only one].")
GroupByOpt = typer.Option(
    None,
    "--group-by",
    help="Which declared grouping folds use: KIND (speaker, word, dialogue) or TASK=KIND[,...] [default: each task's "
    "first; `speechprobe tasks --details` lists them].",
)
LabelMapOpt = typer.Option(
    None,
    "--label-map",
    help="Map label spellings onto a task's labels: FROM=TO or TASK:FROM=TO[,...], or a JSON file.",
)
OutOpt = typer.Option(Path("runs/latest"), "--out", "-o", help="Run directory.")
ProbesOpt = typer.Option("knn,mlp", "--probes", help="Probes: knn, mlp, linear.")
PRIMARY_HELP = (
    "The probe whose best layer is 'the best layer' in every table, test and finding (knn: exact, cheap null)."
)
PrimaryOpt = typer.Option("knn", "--primary-probe", help=PRIMARY_HELP)
FoldsOpt = typer.Option(5, "--folds", help="Cross-validation folds.")
SeedOpt = typer.Option(0, "--seed", help="Seed for data generation, folds and probes (0 to 2^32-1).")
WindowOpt = typer.Option("full", "--window", help="Whisper input: full (30 s, faithful) or trimmed (fast).")
PoolingOpt = typer.Option("mean", "--pooling", help="mean or mean+std over real frames.")
BaselinesOpt = typer.Option(
    None, "--baselines", help="Baselines, comma-separated [default: every default baseline; 'none' for none]."
)
CacheOpt = typer.Option(None, "--cache", help="The one cache root [default: $SPEECHPROBE_CACHE, else the user cache].")
DeviceOpt = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
DtypeOpt = typer.Option(None, "--dtype", help="bf16 (GPU, or a CPU with native bf16) or fp16 (GPU) [default: float32].")
RandomOpt = typer.Option(False, "--random-init", help="Same architectures with random weights (control).")
SizeOpt = typer.Option(None, "--n-per-class", help="Synthetic clips per class [default: each task's own, 10-64].")
BatchOpt = typer.Option(
    None, "--max-batch-seconds", help="Padded audio seconds per batch [default: 120 on a CPU, 960 on a GPU]."
)
ClipOpt = typer.Option(600.0, "--max-clip-seconds", help="Audio decoded per clip; longer clips are cut and counted.")
DupOpt = typer.Option(False, "--drop-duplicates", help="Drop repeated audio (default: keep copies in one group).")
JobsOpt = typer.Option(1, "--jobs", "-j", help="Parallel probe jobs (joblib; -1: one per CPU).")
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
CueOpt = typer.Option(True, "--cue-probes/--no-cue-probes", help="Ridge probes of acoustic cues per layer.")
ErasureOpt = typer.Option(
    False, "--erasure/--no-erasure", help="LEACE-erase each cue group and re-probe the tasks (a probe fit per group)."
)
LayerWeightsOpt = typer.Option(
    True, "--layer-weights/--no-layer-weights", help="Learned weighting of all layers vs the best single layer."
)
EngineOpt = typer.Option("local", "--engine", help="local, or ray (model actors on a Ray cluster; same results).")
AddressOpt = typer.Option(
    None, "--address", help="With --engine ray: auto, HOST:PORT or ray://HOST:PORT [default: a new local Ray]."
)
ActorsOpt = typer.Option(
    None, "--ray-actors", help="With --engine ray: model actors [default: one per GPU, else per CPU but one]."
)
PromptsOpt = typer.Option("all", "--prompts", help="Zero-shot prompts: all, instruction, choose, question, file:PATH.")
ModeOpt = typer.Option(
    "all",
    "--mode",
    help="Zero-shot modes, only these written: all, likelihood (per-token), likelihood_raw, likelihood_cc, "
    "likelihood_pmi, likelihood_bc (calibrated), generate, native (a model's own head).",
)
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


def check_models(models: str, baselines_only: bool) -> None:
    """``--models`` is required unless ``--baselines-only`` says the user means to run the baselines alone."""
    if not split_list(models) and not baselines_only:
        raise ConfigError(
            "--models is required (e.g. --models whisper-tiny.en; `speechprobe models` lists them); "
            "pass --baselines-only to run the baselines alone"
        )
    if split_list(models) and baselines_only:
        raise ConfigError(f"--baselines-only excludes --models {models}; pass one")


def extraction_fields(
    models: str,
    tasks: str,
    out: Path,
    pooling: str,
    baselines: str | None,
    random_init: bool,
    n_per_class: int | None,
    max_batch_seconds: float | None,
    max_clip_seconds: float,
) -> dict:
    """The RunConfig fields that ``run`` and ``extract`` take alike, from their options."""
    chosen = {} if baselines is None else {"baselines": split_list(baselines)}  # None: the registry's defaults
    return dict(
        models=split_list(models),
        tasks=split_list(tasks),
        out=out,
        pooling=pooling,
        **chosen,
        random_init=random_init,
        n_per_class=n_per_class,
        max_batch_seconds=max_batch_seconds,
        max_clip_seconds=max_clip_seconds,
    )


def compute_options(
    ctx: typer.Context, device, dtype, window, seed, cache, engine="local", address=None, actors=None
) -> dict:
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


def label_map_option(value: str | None) -> dict[str, dict[str, str]] | None:
    """``--label-map`` parsed (a JSON file is read here, so the run records its content)."""
    from ..data.labels import parse_label_map

    return parse_label_map(value) or None
