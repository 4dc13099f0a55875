"""CSV cells that a spreadsheet would run as a formula: neutralised on write, restored on read.

A task, label, model name or zero-shot answer such as ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` would
otherwise start a cell of results.csv, summary.csv, main_table.csv or clips/*.csv, and a spreadsheet opening
the file evaluates it (CSV formula injection). As OWASP advises, a text cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is written with a leading single quote, which spreadsheets show as
text. Numbers are left alone: numeric columns are never touched, and a text cell that is a plain number
(``-0.5``, ``+3``, ``-inf``) is no formula. A text cell that itself starts with a quote is quoted too, so
the rule is reversible: :func:`restore` (used by :func:`read_csv`, the project's CSV reader for its own
files) drops one leading quote from every text cell that has one, giving back the original values.
A run whose names start with none of these characters writes the same bytes as before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
_NUMBER = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading quote when a spreadsheet would read it as a formula (or it starts with one)."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] == QUOTE or value[0] in "\t\r" or (value[0] in TRIGGERS and not _NUMBER.fullmatch(value)):
        return QUOTE + value
    return value


def restore_cell(value: Any) -> Any:
    """The inverse of :func:`neutralise_cell`."""
    return value[1:] if isinstance(value, str) and value.startswith(QUOTE) else value


def _map_text(frame: pd.DataFrame, fn) -> pd.DataFrame:
    """``fn`` over the text cells (and the header) of ``frame``; the frame itself when nothing changes."""
    columns = [fn(c) for c in frame.columns]
    changed = {}
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        if col.dtype != object and not pd.api.types.is_string_dtype(col.dtype):
            continue
        mapping = {v: fn(v) for v in pd.unique(col.dropna()) if fn(v) is not v}
        if mapping:
            changed[i] = col.map(lambda v, m=mapping: m.get(v, v) if isinstance(v, str) else v)
    if not changed and columns == list(frame.columns):
        return frame
    out = frame.copy()
    for i, col in changed.items():
        out.isetitem(i, col)
    out.columns = columns
    return out


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every formula-like text cell and header neutralised (numeric columns untouched)."""
    return _map_text(frame, neutralise_cell)


def restore(frame: pd.DataFrame) -> pd.DataFrame:
    """The values :func:`neutralise` was given."""
    return _map_text(frame, restore_cell)


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` of a CSV this project wrote, with neutralised cells restored."""
    return restore(pd.read_csv(path, **kwargs))


__all__ = ["neutralise", "neutralise_cell", "read_csv", "restore", "restore_cell"]
