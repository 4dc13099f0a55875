"""Render a report, summary first: ``report.html`` (one self-contained page) and ``report.md``.

The first screen holds the study's headline figure, the "what this shows" sentences and the depth
fingerprints; warnings and missing data stay visible above them. Everything else follows in collapsed
sections (``<details>``), so a reader sees the result before the detail and can open what they need.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from . import interactive
from .analysis_findings import FindingGroup
from .page import bullet_box, image_figure, page, section
from .tables import Table, html_table, md_table

# Report sections in page order; a figure's section (FigureEntry.section) that is not listed joins "Analyses".
SECTIONS = {
    "Layer curves": "curves",
    "Heatmaps": "heatmaps",
    "Embeddings": "embeddings",
    "Zero-shot vs probes": "zeroshot",
}


@dataclass
class Figure:
    """A figure of the report: a static PNG (``path``) and, when it has one, an interactive version."""

    caption: str
    section: str
    path: Path | None = None
    spec: dict | None = None  # Plotly specification (interactive.*_figure)
    key: str = ""


@dataclass
class Report:
    """Everything both renderers need."""

    title: str
    meta: str = ""
    takeaways: list[str] = field(default_factory=list)  # "what this shows": lead, then one sentence per model
    headline: Figure | None = None
    fingerprints: Figure | None = None
    findings: list[str] = field(default_factory=list)
    finding_tables: list[Table] = field(default_factory=list)  # "All findings" in tables (before the sentences)
    finding_groups: list[FindingGroup] = field(default_factory=list)  # each analysis's findings, collapsed
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    run_tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Numbers:
    """Figure numbers in page order."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n


def _figure_html(fig: Figure, numbers: _Numbers) -> str:
    n = numbers.next()
    if fig.spec is not None:
        return interactive.figure_html(fig.key or f"f{n}", fig.spec, fig.caption, n)
    return image_figure(fig.path, fig.caption, n, fig.key or f"f{n}")


def _summary(rep: Report, numbers: _Numbers) -> list[str]:
    parts = ["<section class='summary' id='summary'>"]
    if rep.headline is not None:
        parts.append(f"<div>{_figure_html(rep.headline, numbers)}</div>")
    words = rep.takeaways or ["No model was probed with a chance level known, so nothing can be summarised."]
    lead, *sentences = words
    parts.append(
        f"<div><h2>What this shows</h2><p class='note'>{html.escape(lead)}</p><ul class='findings'>"
        + "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
        + "</ul></div>"
    )
    if rep.fingerprints is not None:
        parts.append(f"<div class='wide'>{_figure_html(rep.fingerprints, numbers)}</div>")
    parts.append("</section>")
    return parts


def _grouped(figures: list[Figure]) -> dict[str, list[Figure]]:
    """Figures by page section, in :data:`SECTIONS` order, then "Analyses" with its subsections."""
    out: dict[str, list[Figure]] = {name: [] for name in SECTIONS}
    out["Analyses"] = []
    for fig in figures:
        out[fig.section if fig.section in SECTIONS else "Analyses"].append(fig)
    return out


def _sentences(sentences: list[str]) -> str:
    return "<ul class='findings'>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>"


def _count(items: list, what: str) -> str:
    return f"{len(items)} {what}{'' if len(items) == 1 else 's'}" if items else ""


def render_html(rep: Report) -> str:
    """The report page: summary first, details collapsed."""
    numbers = _Numbers()
    body = [f"<h1>{html.escape(rep.title)}</h1>"]
    if rep.meta:
        body.append(f"<p class='meta'>{html.escape(rep.meta)}</p>")
    body.append(bullet_box("Warnings", rep.warnings, "warn"))
    body.append(bullet_box("Missing or partial data", rep.problems, "missing"))
    body += _summary(rep, numbers)
    findings = [html_table(t, f"f{k}") for k, t in enumerate(rep.finding_tables)]
    findings.append(_sentences(rep.findings))
    for k, group in enumerate(rep.finding_groups):
        inner = [_sentences(group.sentences), *(html_table(t, f"g{k}-{j}") for j, t in enumerate(group.tables))]
        count = ", ".join(c for c in (_count(group.tables, "table"), _count(group.sentences, "sentence")) if c)
        findings.append(section(group.title, inner, f"findings-{k}", count=count))
    count = f"{len(rep.finding_tables)} tables, {len(rep.findings)} sentences, {len(rep.finding_groups)} analyses"
    body.append(section("All findings", findings, "findings", count=count))
    grouped = _grouped(rep.figures)
    tables = [
        "<p class='note'>Click a column header to sort.</p>",
        *(html_table(t, k) for k, t in enumerate(rep.tables)),
    ]
    order = [("Layer curves", "Layer curves per task"), ("Heatmaps", "Heatmaps")]
    for name, title in order:
        if grouped[name]:
            figs = [_figure_html(f, numbers) for f in grouped[name]]
            body.append(section(title, figs, SECTIONS[name], count=f"{len(figs)} figures"))
    body.append(section("Statistics tables", tables, "tables", count=f"{len(rep.tables)} tables"))
    for name, title in (("Embeddings", "Embeddings"), ("Analyses", "Analyses"), ("Zero-shot vs probes", "Zero-shot")):
        figs, current = [], None
        for fig in grouped[name]:
            if name == "Analyses" and fig.section != current:
                current = fig.section
                figs.append(f"<h3>{html.escape(current)}</h3>")
            figs.append(_figure_html(fig, numbers))
        if grouped[name]:
            body.append(section(title, figs, SECTIONS.get(name, "analyses"), count=f"{len(grouped[name])} figures"))
    details = [f"<ul>{''.join(f'<li>{html.escape(s)}</li>' for s in rep.notes)}</ul>"] if rep.notes else []
    details += [html_table(t, len(rep.tables) + k) for k, t in enumerate(rep.run_tables)]
    body.append(section("Run details", details, "run"))
    has_plots = any(f is not None and f.spec is not None for f in [rep.headline, rep.fingerprints, *rep.figures])
    return page(rep.title, body, interactive=has_plots)


def render_markdown(rep: Report, run_dir: Path, escape=lambda s: str(s)) -> str:
    """report.md: the same content in the same order, figures as files under ``figures/``."""
    esc = escape
    numbers = _Numbers()

    def figure(fig: Figure) -> list[str]:
        n = numbers.next()
        if fig.path is None:
            return [f"*Figure {n}* (interactive, in report.html). {esc(fig.caption)}", ""]
        rel = Path(fig.path).relative_to(run_dir).as_posix()
        return [f"![Figure {n}]({rel})", "", f"*Figure {n}.* {esc(fig.caption)}", ""]

    lines = [f"# {esc(rep.title)}", ""] + ([esc(rep.meta), ""] if rep.meta else [])
    if rep.warnings:
        lines += ["## Warnings", "", *[f"- {esc(w)}" for w in rep.warnings], ""]
    if rep.problems:
        lines += ["## Missing or partial data", "", *[f"- {esc(p)}" for p in rep.problems], ""]
    lines += ["## Summary", ""]
    if rep.headline is not None:
        lines += figure(rep.headline)
    if rep.takeaways:
        lines += [esc(rep.takeaways[0]), "", *[f"- {esc(s)}" for s in rep.takeaways[1:]], ""]
    if rep.fingerprints is not None:
        lines += figure(rep.fingerprints)
    lines += ["## Findings", ""]
    for t in rep.finding_tables:
        lines += [f"### {esc(t.title)}", "", esc(t.note), "", md_table(t.frame, t.formats), ""]
    lines += [*[f"- {esc(s)}" for s in rep.findings], ""]
    for group in rep.finding_groups:
        lines += [f"### {esc(group.title)}", "", *[f"- {esc(s)}" for s in group.sentences], ""]
        for t in group.tables:
            lines += [f"#### {esc(t.title)}", "", esc(t.note), "", md_table(t.frame, t.formats), ""]
    grouped = _grouped(rep.figures)
    for name in ("Layer curves", "Heatmaps"):
        if grouped[name]:
            lines += [f"## {name}", ""] + [line for f in grouped[name] for line in figure(f)]
    lines += ["## Tables", ""]
    for t in rep.tables:
        note = [esc(t.note), ""] if t.note else []
        lines += [f"### {esc(t.title)}", "", *note, md_table(t.frame, t.formats), ""]
    for name in ("Embeddings", "Analyses", "Zero-shot vs probes"):
        if grouped[name]:
            lines += [f"## {name}", ""] + [line for f in grouped[name] for line in figure(f)]
    lines += ["## Run details", ""]
    if rep.notes:
        lines += [*[f"- {esc(s)}" for s in rep.notes], ""]
    for t in rep.run_tables:
        lines += [f"### {esc(t.title)}", "", md_table(t.frame, t.formats), ""]
    return "\n".join(lines)


__all__ = ["Figure", "Report", "render_html", "render_markdown"]
