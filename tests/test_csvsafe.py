"""Spreadsheet-safe CSV cells: formula-like text neutralised, numbers kept, the original read back."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from speechprobe.csvsafe import neutralise_cell, read_csv, restore_cell
from speechprobe.rundir import csv_bytes

TEXTS = ["=1+2", "+cmd", "-x", "@SUM(A1)", "\tlead", "\rlead", "'quoted", "''", "'", "=", "plain", "", "a=b", "é-"]
NUMBERS = ["-0.5", "+3", "-1e-3", "-inf", "-NaN", "1.", "-.5", "12"]


@pytest.mark.parametrize("text", TEXTS + NUMBERS)
def test_every_cell_comes_back(text: str) -> None:
    assert restore_cell(neutralise_cell(text)) == text


@pytest.mark.parametrize(
    "text,written",
    [("=1+2", "'=1+2"), ("-x", "'-x"), ("@a", "'@a"), ("\tb", "'\tb"), ("'q", "''q"), ("a=b", "a=b")],
)
def test_formula_like_cells_are_quoted(text: str, written: str) -> None:
    assert neutralise_cell(text) == written


@pytest.mark.parametrize("text", NUMBERS + ["-1_0"])
def test_plain_numbers_are_not_formulas_but_other_minus_text_is(text: str) -> None:
    quoted = neutralise_cell(text) != text
    assert quoted == (text == "-1_0")  # Python's float() takes "-1_0"; a spreadsheet does not


def test_a_frame_round_trips_through_the_writer_and_reader() -> None:
    frame = pd.DataFrame(
        {
            "=task": ["=HYPERLINK(1)", "ok", "-0.5", "'x"],
            "label": ["@a", "-b", "+1", "\tc"],
            "value": [-0.5, np.nan, 1.0, -2.0],
            "layer": pd.array([0, 1, None, 3], dtype="Int64"),
        }
    )
    raw = csv_bytes(frame)
    cells = [c for line in raw.decode().splitlines() for c in line.split(",")]
    assert "'=task" in cells and "'=HYPERLINK(1)" in cells and "-0.5" in cells and "'-b" in cells
    back = read_csv(io.BytesIO(raw), dtype={"=task": str, "label": str})
    assert list(back.columns) == list(frame.columns)
    assert back["=task"].tolist() == frame["=task"].tolist() and back["label"].tolist() == frame["label"].tolist()
    assert back["value"].tolist()[0] == -0.5


def test_a_frame_without_formula_cells_is_written_as_pandas_writes_it() -> None:
    frame = pd.DataFrame({"model": ["mfcc", "whisper"], "value": [-0.25, 0.5], "note": ["-0.5", "x"]})
    assert csv_bytes(frame) == frame.to_csv(index=False, lineterminator="\n").encode()
