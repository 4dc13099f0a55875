"""The layering of the stages (pyproject's [tool.importlinter]) holds, and the contract does catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports")
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


def test_contract_catches_a_lower_layer_importing_a_higher_one(tmp_path: Path) -> None:
    """A stand-in package with every layer, where models imports features: the same contract breaks."""
    package = tmp_path / "speechprobe"
    package.mkdir()
    for name in [
        "__init__",
        "cli",
        "pipeline",
        "clip_checks",
        "cue_stage",
        "doctor",
        "reproduce",
        "report",
        "analysis",
        "zeroshot",
        "probes",
        "config",
        "features",
        "data",
        "rundir",
        "_version",
        "cache",
        "drawing",
        "errors",
        "files",
        "interrupts",
        "memory",
        "parallel",
        "ray_connect",
        "ray_pool",
        "warnlog",
    ]:
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
