"""The listing commands load no deep-learning library: torch and transformers are imported where a model runs
(lazily in the family modules, ``models/lazy.py``), so ``speechprobe models``, ``tasks`` and ``--help`` start fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "transformers", "sklearn")
PROBE = """
import runpy, sys
sys.argv = ["speechprobe", *sys.argv[1:]]
try:
    runpy.run_module("speechprobe.cli", run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
print("loaded:", ",".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("args", "listed"),
    [(["models", "--csv"], "whisper-tiny.en,"), (["tasks"], "ds-emotion"), (["--help"], "Commands")],
)
def test_a_listing_command_imports_no_torch(args: list[str], listed: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert listed in done.stdout  # the command did list
    assert done.stdout.splitlines()[-1] == "loaded: "


def test_run_help_names_the_analyses_without_torch() -> None:
    """``run --help`` reads the analysis registry (the names under --analyses), whose attention analyses bind
    torch lazily: the help loads the analysis stage (scikit-learn) but no deep-learning library."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    probe = PROBE.format(heavy=("torch", "transformers", "captum", "peft"))
    done = subprocess.run([sys.executable, "-c", probe, "run", "--help"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "context_mixing" in done.stdout and "attribution" in done.stdout  # the analyses are named
    assert done.stdout.splitlines()[-1] == "loaded: "


def test_the_lazy_decorator_is_torchs_inference_mode_at_call_time() -> None:
    import torch

    from speechprobe.models.lazy import Lazy, inference_mode

    @inference_mode
    def double(x):
        return torch.is_inference_mode_enabled(), x * 2

    @inference_mode
    def steps():
        yield torch.is_inference_mode_enabled()

    inside, out = double(torch.ones(2, requires_grad=True))
    assert inside and not out.requires_grad and out.tolist() == [2.0, 2.0]
    assert list(steps()) == [True] and not torch.is_inference_mode_enabled()  # generators too; off outside
    assert Lazy("torch").float32 is torch.float32
