"""The commands that read what runs wrote: report, reproduce, cache verify, models, tasks."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from .app import app, console
from .options import CacheOpt, DeviceOpt, JobsOpt
from .output import stdout


@app.command()
def report(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="A run directory."),
    permutations: int = typer.Option(0, "--permutations", help="Run (more) permutations first; 0 keeps RUN's."),
    embeddings: bool = typer.Option(False, "--embeddings/--no-embeddings", help="Draw t-SNE/UMAP first."),
    primary_probe: str | None = typer.Option(
        None, "--primary-probe", help="Probe whose best layer is tested [default: the run's primary probe]."
    ),
    cache: Path | None = CacheOpt,
    jobs: int = JobsOpt,
) -> None:
    """Build RUN/report.html (self-contained), report.md and the main table (CSV, LaTeX)."""
    from ..analysis import analyse_features, store_loader
    from ..report import build_report
    from ..report.build import check_run_dir
    from ..rundir import RunDir
    from ..settings import check_positive
    from ..warnlog import capture_warnings

    check_positive(permutations, "--permutations", 0, integer=True)
    if jobs != -1 and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: use 1 or more parallel jobs (-1: one per CPU)")
    check_run_dir(run_dir)  # before any analysis writes into it, and before the lock creates a file in it
    with RunDir(run_dir).lock(), capture_warnings():
        if permutations or embeddings:
            analyse_features(
                run_dir,
                store_loader(run_dir, cache),
                analyses=["selection", "embeddings"],
                primary_probe=primary_probe,
                n_permutations=permutations,
                embeddings=embeddings,
                n_jobs=jobs,
                progress=ctx.obj.progress,
            )
        stdout().print(f"report: {build_report(run_dir, progress=ctx.obj.progress)}")


@app.command()
def reproduce(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="A new directory for the rerun."),
    cache: Path | None = CacheOpt,
    allow_revision_change: bool = typer.Option(
        False, "--allow-revision-change", help="Rerun even when a dataset's commit (or content) changed since the run."
    ),
) -> None:
    """Rerun RUN from its manifest.json into --out and report any difference in results.csv (exit 1), naming
    the inputs that changed (task sources, clips, weights)."""
    from ..reproduce import reproduce as reproduce_run

    rep = reproduce_run(run_dir, out, cache, allow_revision_change)
    for lib, (old, new) in rep.version_changes.items():
        console.print(f"note: {lib} was {old}, now {new}")
    if rep.identical:
        stdout().print(f"identical: all {rep.rows} rows of results.csv match {run_dir}")
        return
    stdout().print(f"DIFFERENT: {rep.differing_rows} of {rep.rows} rows differ (max |diff| {rep.max_abs_diff:.3g})")
    for line in rep.changed_inputs:
        stdout().print(f"  changed input: {line}", markup=False)
    if not rep.changed_inputs:
        stdout().print(
            "  no recorded input changed (task sources, clips, weights): the code, the libraries (notes above), "
            "the hardware, or an edit of the original results.csv"
        )
    raise typer.Exit(1)


cache_app = typer.Typer(
    help="Inspect and repair the feature store and the model weights.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(cache_app, name="cache")


@cache_app.command("verify")
def cache_verify(
    cache: Path | None = CacheOpt,
    repair: bool = typer.Option(True, "--repair/--check-only", help="Delete bad items and temp leftovers."),
) -> None:
    """Check every feature item (length, checksum, shape), find temp leftovers, and hash the model weights
    (packaged files against their pins, converted checkpoints against their records; a damaged conversion is
    converted again); exit 1 if --check-only finds anything.

    Run it while no extraction is writing to the same store: in-flight temp files look orphaned.
    """
    from ..cache import cache_root
    from ..features.store import FeatureStore
    from ..models.packaged import verify_weights

    store = FeatureStore(cache_root(cache) / "features")
    rep = store.verify(repair=repair)
    verb = "removed" if repair else "found"
    stdout().print(
        f"{store.root}: {rep.items} items; {len(rep.torn)} torn, {len(rep.corrupt)} failing their checksum, "
        f"{len(rep.unverified)} with an old or no checksum and {len(rep.orphans)} temp leftovers {verb}"
    )
    for p in rep.bad:
        stdout().print(f"  {verb}: {p}")
    weights = verify_weights(cache_root(cache), repair=repair)
    stdout().print(
        f"weights: {weights.checked} checked (packaged files and converted checkpoints); "
        f"{len(weights.problems)} problems"
    )
    for problem in weights.problems:
        stdout().print(f"  {problem}")
    if ((not rep.ok or weights.problems) and not repair) or len(weights.problems) > weights.fixed:
        raise typer.Exit(1)  # found with --check-only, or weights that could not be repaired (a damaged package)


@app.command()
def models(
    as_csv: bool = typer.Option(False, "--csv", help="Comma-separated values (one row per model), not a table."),
) -> None:
    """List registered models with layer counts, hidden sizes, sample rates, sources and what layer 0 is
    (a table as wide as the terminal, 80 columns when piped; --csv for every field unwrapped)."""
    from ..models.registry import checkpoints, families

    fams = families()
    rows = []
    for c in checkpoints().values():
        fam = fams[c.family]
        if fam.source:
            source = fam.source
        elif c.packaged:
            source = f"package (offline){' or ' + c.hub_id if c.hub_id else ''}"
        else:
            source = c.hub_id or c.name
        rows.append([c.name, c.family, str(c.num_layers or "?"), str(c.hidden_size or "?"), str(c.sample_rate), source])
        rows[-1].append(fam.layer0)
    header = ["name", "family", "layers", "hidden", "rate", "source", "layer 0"]
    if as_csv:
        import csv
        import sys

        csv.writer(sys.stdout, lineterminator="\n").writerows([header, *rows])
        return
    out = Console()  # the terminal's width (80 when piped)
    keep = 7 if out.width >= 150 else 6 if out.width >= 110 else 5  # the long "source" and "layer 0" need room
    table = Table(
        *header[:keep], caption=None if keep == 7 else f"--csv (or a wider terminal): {', '.join(header[keep:])}"
    )
    for col in table.columns[:2]:
        col.no_wrap = True
    for row in rows:
        table.add_row(*row[:keep])
    out.print(table)


@app.command()
def tasks(
    details: bool = typer.Option(
        False, "--details", help="Show each task's label meaning, groupings, pinned revision and datasheet line."
    ),
) -> None:
    """List registered tasks with their dimensions and label sets."""
    from rich.markup import escape

    from ..data.registry import registered_tasks

    more = ["label meaning", "groups (--group-by)", "revision", "cue"] if details else []
    table = Table("name", "source", "dimension", "labels", *more)
    table.columns[1].overflow = "fold"  # hub ids in full
    for t in registered_tasks().values():
        row = [t.name, t.source, t.dimension, ", ".join(t.labels)]
        if details:
            groups = "; ".join(
                f"{kind}{' (default)' if i == 0 else ''}: {g.describe()}{' if present' if g.optional else ''}"
                for i, (kind, g) in enumerate(t.groupings.items())
            )
            groups = groups or (t.group_source() if t.group_column or t.group_pattern else "none")
            row += [t.label_semantics or "-", groups, t.revision or "not pinned", t.cue]
        table.add_row(*map(escape, row))  # patterns hold brackets that are not markup
    stdout().print(table)


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Two or more run directories."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for compare.html and its tables (required)."),
    labels: str = typer.Option("", "--labels", help="Comma-separated run names [default: the directory names]."),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 2) if any runs are incomparable."),
) -> None:
    """One report across runs: headline per run, paired differences, incomparable settings flagged."""
    from ..report.compare import compare_runs

    names = [s.strip() for s in labels.split(",") if s.strip()] or None
    if names is not None and len(names) != len(runs):
        raise ConfigError(f"--labels names {len(names)} run(s) but {len(runs)} were given; name each run once")
    page = compare_runs(runs, out, names, strict=strict)
    facts = json.loads((Path(out) / "compare.json").read_text())
    for flag in facts.get("incomparable") or []:
        console.print(f"not comparable: {flag}")
    stdout().print(f"compare: {page}")


@app.command()
def doctor(
    ctx: typer.Context,
    model: str = typer.Option("whisper-tiny.en", "--model", "-m", help="Model to time."),
    device: str = DeviceOpt,
    seconds: float = typer.Option(45.0, "--seconds", help="Time limit of the measurements."),
    cache: Path | None = CacheOpt,
) -> None:
    """Time float32 against bf16 and batch budgets here (< 1 min); recommend --dtype, --max-batch-seconds."""
    from ..cache import using_cache
    from ..doctor import diagnose
    from ..settings import check_positive

    check_positive(seconds, "--seconds")
    say = console.print if ctx.obj.progress else None
    with using_cache(cache):  # converted checkpoints go to (and are read from) this cache
        diag = diagnose(model, device, time_limit=seconds, progress=say)
    out = stdout()
    for key, value in diag.facts.items():
        out.print(f"{key:>32}: {value}")
    out.print(f"{'dtype':>8} {'budget s':>9} {'clips':>6} {'batch s':>8} {'x real time':>12}")
    for m in diag.measurements:
        out.print(f"{m.dtype:>8} {m.budget:>9g} {m.clips_per_batch:>6} {m.seconds:>8.2f} {m.realtime:>12.1f}")
    for line in diag.recommendations:
        out.print(line)
    for note in diag.notes:
        out.print(f"note: {note}")
    start = f"{diag.setup_seconds:.0f} s of it starting: loading {model}, first call"
    out.print(f"measured in {diag.seconds:.0f} s ({start})")
