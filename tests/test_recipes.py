"""ARCHITECTURE.md's recipes for a model family, a baseline, a task and a metric, done from outside speechprobe.

An installed plugin package (a dist-info with ``entry_points.txt`` on ``sys.path``) declares a toy family
(``tests/toy_family.py``), a one-layer baseline and a task in the ``speechprobe.families`` and
``speechprobe.tasks`` groups; a metric is the documented one entry in ``PROBE_SCORERS``. No file of src/
changes. One tiny run through the CLI then shows each of them listed, run, in the run directory and in
the report.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from speechprobe.cli import app
from speechprobe.data import registry as task_registry
from speechprobe.data import tasks
from speechprobe.models import registry as model_registry
from speechprobe.probes.metrics import PROBE_SCORERS
from toy_family import write_pitch_tones

PLUGIN = '''"""A third-party speechprobe plugin: a model family, its baseline and a task."""
from speechprobe.data.tasks import Task
from toy_family import ENERGY, TOY

FAMILIES = [TOY, ENERGY]
TASKS = [Task("toy_pitch", ("high", "low"), "paralinguistic", "test:toy-pitch", "pitch (250 or 500 Hz tones)")]
'''
ENTRY_POINTS = """[speechprobe.families]
toy = toy_recipes:FAMILIES

[speechprobe.tasks]
toy = toy_recipes:TASKS
"""


def error_rate(y_true, y_pred, labels=None) -> float:
    """The toy metric: the fraction of clips predicted wrong."""
    return float(np.mean(np.asarray(y_true) != np.asarray(y_pred)))


def cli(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plugin installed (on sys.path) with fresh registries and the metric registered; all undone after."""
    site = tmp_path_factory.mktemp("site")
    (site / "toy_recipes").mkdir()
    (site / "toy_recipes" / "__init__.py").write_text(PLUGIN)
    info = site / "toy_recipes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-recipes\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        mp.setattr(model_registry, "_FAMILIES", {})
        mp.setattr(model_registry, "_loaded", False)
        mp.setattr(tasks, "_REGISTRY", dict(task_registry.registered_tasks()))  # the built-in ones loaded first
        mp.setattr(task_registry, "_plugins_loaded", False)
        mp.setitem(PROBE_SCORERS, "error_rate", error_rate)  # the metric recipe's one entry
        yield tmp_path_factory.mktemp("recipes")


@pytest.fixture(scope="module")
def run_dir(plugin):
    """One tiny run of the plugin's model and baseline on the plugin's task (a manifest of its clips)."""
    manifest = write_pitch_tones(plugin / "tones")
    out = plugin / "run"
    cli(
        "run",
        *("--models", "toy-tiny", "--baselines", "toy-energy", "--tasks", f"toy_pitch={manifest}"),
        *("--out", str(out), "--cache", str(plugin / "cache"), "--folds", "3", "--probes", "knn"),
        *("--permutations", "0", "--no-embeddings", "--bootstrap", "0", "--no-cue-probes", "--no-layer-weights"),
        *("--no-similarity", "--no-mdl", "--no-fingerprints"),  # the analyses: recipes of their own
    )
    return out


def test_the_plugins_family_baseline_and_task_are_listed(plugin):
    models = cli("models")
    assert "toy-tiny" in models and "toy-energy" in models
    assert "toy-energy" in model_registry.default_baselines()  # a Checkpoint(baseline=True) joins every default
    assert "toy_pitch" in cli("tasks")


def test_a_run_of_the_plugin_lands_in_the_run_directory(run_dir):
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results["task"]) == {"toy_pitch"} and set(results["model"]) == {"toy-tiny", "toy-energy"}
    f1 = results[results.metric == "macro_f1"].groupby(["model", "layer"])["value"].mean()
    assert list(f1.index) == [("toy-energy", 0), ("toy-tiny", 0), ("toy-tiny", 1)]
    assert f1["toy-tiny", 1] == 1.0  # the spectrum layer knows pitch on held-out loudness groups
    assert f1["toy-energy", 0] < 0.8 and f1["toy-energy", 0] == f1["toy-tiny", 0]  # the baseline is layer 0
    # the metric: one row per (model, layer, fold), each 1 - that fold's accuracy
    keys = ["model", "layer", "probe", "fold"]
    wide = results[results.metric.isin(["accuracy", "error_rate"])].pivot_table("value", keys, "metric")
    assert len(wide) == 3 * 3 and wide["error_rate"].notna().all()
    np.testing.assert_allclose(wide["error_rate"], 1 - wide["accuracy"])
    summary = pd.read_csv(run_dir / "summary.csv").set_index(["model", "layer", "metric"])["mean"]
    assert summary["toy-tiny", 1, "error_rate"] == 0.0 and summary["toy-energy", 0, "error_rate"] > 0.2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["models"]["toy-energy"]["family"] == "toy-energy"
    assert manifest["models"]["toy-tiny"]["source"] == "test:toy"


def test_the_report_names_the_plugins_model_baseline_and_task(run_dir):
    page = (run_dir / "report.html").read_text()
    for name in ("toy-tiny", "toy-energy", "toy_pitch"):
        assert name in page, name
