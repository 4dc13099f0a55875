"""Fixtures for the report tests: the hand-made run directories of the analysis tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))  # synthetic_run, shared with analysis

from synthetic_run import write_run


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """A complete synthetic run directory (three tasks, two Whisper models, mfcc and librosa)."""
    return write_run(tmp_path / "run")
