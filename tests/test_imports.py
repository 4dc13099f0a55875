"""The layering of the stages (pyproject's [tool.importlinter]) holds, and the contract does catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports")
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
pytestmark = pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is in the test extra")


def _lint(config: Path, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [LINT_IMPORTS, str(config), "--no-cache"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_import_contracts_hold() -> None:
    done = _lint(ROOT / "pyproject.toml", ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def _layer_modules() -> list[str]:
    """Every module the layers contract names (from pyproject.toml, so the stand-in never falls behind)."""
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    return [m.strip("() ") for layer in contract["layers"] for part in layer.split("|") for m in part.split(":")]


def test_contract_catches_a_lower_layer_importing_a_higher_one(tmp_path: Path) -> None:
    """A stand-in package with every layer, where models imports features: the same contract breaks."""
    package = tmp_path / "speechprobe"
    package.mkdir()
    for name in ["__init__", *_layer_modules()]:
        (package / f"{name}.py").write_text("")
    (package / "models.py").write_text("from . import features\n")
    config = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    start = text.find("ignore_imports = [")  # the known breaches name modules the stand-in lacks
    if start >= 0:
        text = text[:start] + text[text.index("]\n", start) + 2 :]
    config.write_text(text)
    done = _lint(config, tmp_path)
    assert done.returncode != 0
    assert "speechprobe.models is not allowed to import speechprobe.features" in done.stdout
