"""What a layer analysis hands to the report: its tables, figures with captions, findings and notes.

Each analysis module (similarity, MDL, depth fingerprints) returns an :class:`AnalysisOutput` and
writes it to ``RUN/analyses/<name>.json``; :func:`speechprobe.analysis.report.build_report` reads
those files, so the report needs neither the features nor the analysis code. Paths are stored
relative to the run directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SpeechprobeError
from .summary import atomic_write

OUTPUT_DIR = "analyses"
# Report order: the depth fingerprints headline the report.
ORDER = ("fingerprints", "similarity", "mdl")


@dataclass
class FigureNote:
    """One figure (PNG path relative to the run directory), its caption and report section."""

    path: str
    caption: str
    section: str


@dataclass
class AnalysisOutput:
    """Tables (CSV paths relative to the run directory), figures, plain-words findings and notes."""

    name: str
    tables: list[str] = field(default_factory=list)
    figures: list[FigureNote] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)


def write_output(run_dir: Path, output: AnalysisOutput) -> Path:
    """Write ``RUN/analyses/<name>.json`` atomically."""
    text = json.dumps(asdict(output), indent=2, default=str) + "\n"
    return atomic_write(Path(run_dir) / OUTPUT_DIR / f"{output.name}.json", lambda fh: fh.write(text.encode()))


def read_outputs(run_dir: Path) -> tuple[list[AnalysisOutput], list[str]]:
    """Every ``RUN/analyses/*.json`` (fingerprints first), and one problem line per unreadable file."""
    folder = Path(run_dir) / OUTPUT_DIR
    found, problems = [], []
    paths = sorted(
        folder.glob("*.json"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem)
    )
    for path in paths:
        try:
            data = json.loads(path.read_text())
            figures = [FigureNote(**f) for f in data.pop("figures", [])]
            found.append(AnalysisOutput(**data, figures=figures))
        except (OSError, ValueError, TypeError) as e:
            problems.append(f"{OUTPUT_DIR}/{path.name} cannot be read ({e})")
    return found, problems


def rel(run_dir: Path, path: Path) -> str:
    """``path`` relative to the run directory, as a POSIX string."""
    try:
        return Path(path).relative_to(Path(run_dir)).as_posix()
    except ValueError:
        raise SpeechprobeError(f"{path} is not inside the run directory {run_dir}") from None
