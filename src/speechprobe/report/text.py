"""How the report writes a number or a name in prose and in Markdown (one place, so tables, findings and
report.md agree)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd


def fmt(v, digits: int = 3) -> str:
    """A cell or a number in prose: "–" for missing, yes/no, integers as such, floats to ``digits``."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}"
    return str(v)


def pm(mean, ci) -> str:
    """``mean ± ci`` (the mean alone when the interval is unknown)."""
    return f"{fmt(mean)} ± {fmt(ci)}" if np.isfinite(ci) else fmt(mean)


def task_start(task: str) -> str:
    """A task name that can start a sentence."""
    return task[:1].upper() + task[1:] if re.fullmatch(r"[A-Za-z][\w-]*", task) else f"Task {task}"


def signed(v) -> str:
    """A gain with its sign."""
    return "–" if pd.isna(v) else f"{v:+.3f}"


# Characters that make markup inside a line of text (emphasis, code, links, HTML, tables, math, strikethrough);
# "#", "+", "-" and digits only do at the start of a line, where the report always puts "- " or "### " first.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")


def md_escape(text: object) -> str:
    """Text as literal Markdown: labels and task names never become emphasis, links, HTML or table cells."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


__all__ = ["fmt", "md_escape", "pm", "signed", "task_start"]
