"""Build a run's report: ``report.html`` (one self-contained file), ``report.md``, ``main_table.{csv,tex}``.

:func:`build_report` works from the files in the run directory alone (:mod:`.load`). "Best layer" is the
primary probe's everywhere (:mod:`speechprobe.analysis.primary`); other probes are secondary columns and
lines. The page opens with the summary (headline heatmap, "what this shows", depth fingerprints) and
keeps the details in collapsed sections (:mod:`.render`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..analysis.curves import DEFAULT_TOL, baseline_gain, curve_shapes, paralinguistic_summary
from ..analysis.units import withhold_columns, withhold_shapes
from ..errors import SpeechprobeError
from ..files import write_text
from ..rundir import MANIFEST, RESULTS, RUN_FILE, SUMMARY
from .analysis_findings import analysis_groups
from .figures import detail_figures, summary_figures
from .findings import FINDINGS_TABLE_TEXT, findings, findings_table, warnings_for, zeroshot_findings
from .headline import headline_table
from .latex import write_main_table
from .load import RunData, chance_table, load_run
from .render import Report, render_html, render_markdown
from .tables import Table, detail_tables, kv_table, main_table, models_frame, skipped_count, skipped_frame
from .takeaways import what_this_shows
from .text import md_escape


def run_headline(data: RunData, chance: pd.DataFrame | None = None) -> pd.DataFrame:
    """The headline rows of a loaded run (:func:`.headline.headline_table` at the primary probe)."""
    chance = chance_table(data) if chance is None else chance
    gains = baseline_gain(
        data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary, ratios=data.ratios
    )
    gains = withhold_columns(gains, data.withheld("a paired gap"), ["gain_ci95"])
    levels = {r.task: float(r.chance_macro_f1) for r in chance.itertuples() if pd.notna(r.chance_macro_f1)}
    return headline_table(
        data.summary, gains, levels, data.primary, data.baselines, data.depths, data.permutation, data.bootstrap
    )


def takeaways(run_dir: Path) -> list[str]:
    """The "what this shows" sentences of a run directory (the console prints them after a run)."""
    data = load_run(Path(run_dir))
    return what_this_shows(run_headline(data), data.primary)


def _notes(data: RunData) -> list[str]:
    notes = [str(n) for n in data.analysis.get("notes", [])]
    notes += [f"{out.analysis}: {n}" for out in data.outputs for n in out.notes if n not in notes]
    if data.permutation is None:
        notes.append(
            "No permutation.csv: permutation tests were not run (speechprobe report --permutations N runs them)."
        )
    if data.chance is None:
        notes.append("No chance.csv: the empirical chance per layer comes with the permutation tests.")
    return notes


def _run_tables(data: RunData) -> list[Table]:
    return [
        kv_table(data.config, "Configuration"),
        kv_table(data.manifest.get("versions") or {}, "Versions"),
        Table("Models", models_frame(data.manifest)),
        Table(
            "Skipped items",
            skipped_frame(data.manifest),
            f"{skipped_count(data.manifest)} item(s) skipped, with reasons.",
        ),
    ]


def _meta(data: RunData) -> str:
    cfg = data.config
    parts = [f"primary probe {data.primary}"] + ([data.fold_plan] if data.fold_plan else [])
    for key, label in (("seed", "seed"), ("n_per_class", "clips per class")):
        if cfg.get(key) is not None:
            parts.append(f"{label} {cfg[key]}")
    if cfg.get("window"):
        parts.append(f"window {cfg['window']}")
    return "; ".join(parts)


RUN_MARKS = (RUN_FILE, MANIFEST, RESULTS, SUMMARY)  # a run directory holds at least one (damaged runs still report)


def check_run_dir(run_dir: Path) -> None:
    """A one-line error unless ``run_dir`` is a run directory: it holds run.json (the stages' settings
    fingerprints), manifest.json, results.csv or summary.csv; an empty or unrelated folder is refused."""
    if not Path(run_dir).is_dir():
        raise SpeechprobeError(f"{run_dir}: no such run directory")
    if not any((Path(run_dir) / name).is_file() for name in RUN_MARKS):
        raise SpeechprobeError(
            f"{run_dir} is not a speechprobe run directory (it holds none of {', '.join(RUN_MARKS)}); "
            "pass the --out of a run"
        )


REPORT_STEPS = ("reading the run", "tables", "figures", "findings", "writing")


def _step(bar: tqdm, done: str | None) -> None:
    """Mark the report step ``done`` finished and name the next one on ``bar``."""
    if done is not None:
        bar.update()
    following = REPORT_STEPS[bar.n] if bar.n < len(REPORT_STEPS) else ""
    bar.set_postfix_str(following)


def build_report(run_dir: Path, title: str | None = None, progress: bool = False) -> Path:
    """Write ``RUN/report.html``, ``RUN/report.md``, ``RUN/main_table.csv`` and ``RUN/main_table.tex``
    (and the score figures in ``RUN/figures``) from the files in ``run_dir``; return the HTML path.

    Missing or partial inputs are listed in the report's "Missing or partial data" box; whatever can
    be computed is still rendered. Raises SpeechprobeError, writing nothing, when ``run_dir`` is not a run
    directory (:func:`check_run_dir`).
    ``progress``: a bar over :data:`REPORT_STEPS`.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    bar = tqdm(total=len(REPORT_STEPS), desc="report", unit="step", disable=not progress, leave=False)
    _step(bar, None)
    data = load_run(run_dir)
    _step(bar, "reading the run")
    chance = chance_table(data)
    shapes = curve_shapes(data.summary, "macro_f1", DEFAULT_TOL, data.depths, data.results, data.ratios)
    shapes = withhold_shapes(shapes, data.withheld("a paired gap between layers"))
    gains = baseline_gain(
        data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary, ratios=data.ratios
    )
    gains = withhold_columns(gains, data.withheld("a paired gap"), ["gain_ci95"])
    para = paralinguistic_summary(gains, data.tasks_meta)
    table = main_table(data, chance, shapes)
    headline = run_headline(data, chance)
    _step(bar, "tables")
    head, finger = summary_figures(data, headline)
    figures, fig_problems = detail_figures(data, chance)
    _step(bar, "figures")
    all_findings = findings(data, table, para)
    rep = Report(
        title=title or f"speechprobe report: {run_dir.name}",
        meta=_meta(data),
        takeaways=what_this_shows(headline, data.primary, shapes, data.zeroshot_correlation),
        headline=head,
        fingerprints=finger,
        finding_tables=[Table("Per model and task", findings_table(data, table, shapes), FINDINGS_TABLE_TEXT)],
        findings=[*all_findings, *zeroshot_findings(data)],
        finding_groups=analysis_groups(run_dir, data.outputs, data.baselines),
        warnings=warnings_for(data),
        problems=[*data.problems, *fig_problems],
        tables=detail_tables(data, table, shapes, gains, para, chance),
        figures=figures,
        run_tables=_run_tables(data),
        notes=_notes(data),
    )
    _step(bar, "findings")
    write_main_table(run_dir, table, data.baselines)
    write_text(run_dir / "report.md", render_markdown(rep, run_dir, escape=md_escape))
    path = write_text(run_dir / "report.html", render_html(rep))
    _step(bar, "writing")
    bar.close()
    return path


__all__ = ["build_report", "check_run_dir", "run_headline", "takeaways"]
