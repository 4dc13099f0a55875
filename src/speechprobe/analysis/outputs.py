"""What an analysis hands to the report, the one hand-off: ``RUN/analyses/<name>.json``.

After every run of the analysis plan (:mod:`.plan`), :func:`hand_off` writes, for each analysis it ran,
its tables (CSV in the run directory), its figures (``RUN/figures``) with their captions and the
analysis's report section, its findings sentences (its ``findings(run_dir)``, else those its units
returned) and its notes (what was skipped and why). :func:`speechprobe.report.build_report` reads every
such file, so the report shows an analysis without knowing it (``summary``: its sentences lead the
report and its figures are on the summary). Schema::

    {"analysis": name, "params": {...}, "tables": ["cues.csv", ...],
     "figures": [{"path": "figures/x.png", "caption": "...", "section": "..."}, ...],
     "findings": ["...", ...], "notes": ["...", ...], "seconds": wall time, "summary": false}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SpeechprobeError
from ..files import atomic_write

SIDECAR_DIR = "analyses"


@dataclass
class FigureNote:
    """A figure an analysis drew, relative to the run directory, with its caption and report section."""

    path: str
    caption: str
    section: str


@dataclass
class AnalysisOutput:
    """The files and sentences one analysis produced in a run directory."""

    analysis: str
    params: dict = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    figures: list[FigureNote] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the analysis (for benchmarks/README.md)
    summary: bool = False  # its sentences lead the report, its figures are on the summary

    def write(self, run_dir: Path) -> Path:
        """Atomically write ``RUN/analyses/<analysis>.json``."""
        text = json.dumps(asdict(self), indent=2, default=str) + "\n"
        return atomic_write(Path(run_dir) / SIDECAR_DIR / f"{self.analysis}.json", lambda fh: fh.write(text.encode()))


def hand_off(run_dir: Path, analysis, info: dict, params: dict) -> AnalysisOutput:
    """Write ``analysis``'s ``RUN/analyses/<name>.json`` from ``info`` (analysis.json's content: each unit's
    entry, this run's notes and seconds); returns it."""
    run_dir = Path(run_dir)
    entries = list((info.get("done") or {}).get(analysis.name, {}).values())
    captions = {p: text for e in entries for p, text in e.get("captions", {}).items() if (run_dir / p).is_file()}
    notes = [n for n in info.get("notes", []) if n.startswith(f"{analysis.name} skipped for ")]
    notes += [n for e in entries for n in e.get("notes", [])]
    findings = [s for e in entries for s in e.get("findings", [])]
    if analysis.findings is not None:
        try:
            findings = analysis.findings(run_dir)
        except SpeechprobeError as e:
            notes.append(f"{analysis.name}: no findings ({e})")
    out = AnalysisOutput(
        analysis=analysis.name,
        params=params,
        tables=[t for t in analysis.tables if (run_dir / t).is_file()],
        figures=[FigureNote(path, text, analysis.section) for path, text in sorted(captions.items())],
        findings=findings,
        notes=list(dict.fromkeys(notes)),
        seconds=round(float((info.get("seconds") or {}).get(analysis.name, 0.0)), 3),
        summary=analysis.summary,
    )
    out.write(run_dir)
    return out


def read_outputs(run_dir: Path) -> tuple[list[AnalysisOutput], list[str]]:
    """Every ``RUN/analyses/*.json`` (sorted by name), and a problem line for each unreadable one."""
    outputs, problems = [], []
    for path in sorted((Path(run_dir) / SIDECAR_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            figures = [FigureNote(**f) for f in data.pop("figures", [])]
            outputs.append(AnalysisOutput(**data, figures=figures))
        except (OSError, ValueError, TypeError) as e:
            problems.append(f"{SIDECAR_DIR}/{path.name} could not be read ({e}); that analysis is not shown")
    return outputs, problems
