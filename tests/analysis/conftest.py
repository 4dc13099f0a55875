"""Fixtures for the analysis tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_run import write_run


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """A complete synthetic run directory (no permutation/chance files yet)."""
    return write_run(tmp_path / "run")
