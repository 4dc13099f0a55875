"""The "Adding things → An analysis" recipe, with no edit of src/: a plugin package installed only as an entry
point in the ``speechprobe.analyses`` group (a ``*.dist-info`` folder on the path) adds a toy analysis, and a
tiny ``speechprobe run`` in a fresh process lists it, runs it through ``--analyses``, writes its table into the
run directory, hands its figure caption and sentence to the report, and runs nothing it was not asked for.

The toy analysis measures the mean Euclidean norm of each layer's features; its findings sentence names the
layer with the largest norm, read back from its table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PLUGIN = """
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from speechprobe.analysis import Analysis, AnalysisResult, Figure


def compute(unit):
    feats = unit.features()
    norms = np.linalg.norm(feats, axis=2).mean(axis=0)
    rows = pd.DataFrame({"model": unit.model, "task": unit.task, "layer": range(len(norms)), "norm": norms})
    png = unit.figure_path("toy_norms")
    png.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(png, norms[None, :])
    return AnalysisResult({"toy_norms.csv": rows}, [Figure(png, f"Toy norms of {unit.model}.")])


def findings(run_dir):
    table = pd.read_csv(run_dir / "toy_norms.csv")
    return [f"Toy norms: {r.model} on {r.task} peaks at layer {r.layer} ({r.norm:.3f})."
            for r in table.loc[table.groupby(["model", "task"])["norm"].idxmax()].itertuples()]


ANALYSIS = Analysis(
    name="toy_norms",
    compute=compute,
    tables={"toy_norms.csv": ["model", "task", "layer", "norm"]},
    default=False,
    cost="seconds",
    findings=findings,
    section="Toy norms",
    description="Mean Euclidean norm of each layer's features.",
)
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    """A folder holding the plugin module and its ``dist-info`` (entry point), as pip would install it."""
    root = tmp_path / "site"
    (root / "toy_analysis").mkdir(parents=True)
    (root / "toy_analysis" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "toy_analysis-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-analysis\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[speechprobe.analyses]\ntoy_norms = toy_analysis:ANALYSIS\n")
    return root


def _cli(plugin: Path, *args: str) -> subprocess.CompletedProcess:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(src)])}
    return subprocess.run(
        [sys.executable, "-m", "speechprobe.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_a_plugin_analysis_runs_end_to_end(plugin: Path, tones: Path, tmp_path: Path) -> None:
    listed = _cli(plugin, "run", "--analyses", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("toy_norms"))
    assert line == "toy_norms (off by default; seconds): Mean Euclidean norm of each layer's features."
    names = [x.split(" (")[0] for x in listed.stdout.splitlines()]
    assert names[0] == "selection" and names[-1] == "toy_norms"
    for command in ("run", "demo"):  # --help names every registered analysis, the plugin's too
        helped = " ".join(_cli(plugin, command, "--help").stdout.split())
        assert re.search(r"Analyses: ([^.]*)\.", helped).group(1).split(", ") == names
    wrong = _cli(plugin, "run", "--analyses", "+toy_norm", "--tasks", "x", "--out", str(tmp_path / "no"))
    assert wrong.returncode == 2 and "toy_norms" in wrong.stderr  # the choices name the plugin's analysis

    out = tmp_path / "run"
    args = ["--baselines-only", "--baselines", "mfcc", "--tasks", str(tones), "--out", str(out), "--folds", "4"]
    done = _cli(plugin, "run", *args, "--cache", str(tmp_path / "cache"), "--analyses", "toy_norms")
    assert done.returncode == 0, done.stderr

    table = pd.read_csv(out / "toy_norms.csv")
    assert list(table.columns) == ["model", "task", "layer", "norm"] and set(table["model"]) == {"mfcc"}
    assert len(table) == 1 and table["norm"].iloc[0] > 0
    assert np.isfinite(table["norm"]).all()
    handed = json.loads((out / "analyses" / "toy_norms.json").read_text())
    sentence = f"Toy norms: mfcc on tones peaks at layer 0 ({table['norm'].iloc[0]:.3f})."
    assert handed["findings"] == [sentence] and handed["tables"] == ["toy_norms.csv"]
    assert handed["figures"] == [
        {"path": "figures/toy_norms_mfcc_tones.png", "caption": "Toy norms of mfcc.", "section": "Toy norms"}
    ]
    report = (out / "report.md").read_text()
    assert sentence in report and "Toy norms of mfcc." in report
    # --analyses toy_norms: only it ran; the built-in analyses' flags were switched off in the stored settings
    assert sorted(p.name for p in (out / "analyses").iterdir()) == ["toy_norms.json"]
    assert not (out / "permutation.csv").exists() and not (out / "mdl.csv").exists()
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["analyses"] == "+toy_norms" and config["permutations"] == 0 and config["mdl"] is False
