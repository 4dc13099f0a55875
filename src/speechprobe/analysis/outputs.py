"""What a feature-level analysis hands to the report: ``RUN/analyses/<name>.json``.

Each analysis writes its tables (CSV in the run directory) and figures (``RUN/figures``) itself, then
records them here with a caption per figure, its findings sentences and its notes (what was skipped
and why). :func:`speechprobe.report.build_report` reads every such file, so the report shows
an analysis without knowing it. Schema::

    {"analysis": name, "params": {...}, "tables": ["cues.csv", ...],
     "figures": [{"path": "figures/x.png", "caption": "...", "section": "..."}, ...],
     "findings": ["...", ...], "notes": ["...", ...], "seconds": wall time}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

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

    def write(self, run_dir: Path) -> Path:
        """Atomically write ``RUN/analyses/<analysis>.json``."""
        text = json.dumps(asdict(self), indent=2, default=str) + "\n"
        return atomic_write(Path(run_dir) / SIDECAR_DIR / f"{self.analysis}.json", lambda fh: fh.write(text.encode()))


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
