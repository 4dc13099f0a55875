"""A third-party model family (``tests/toy_family.py``; no edit of src/), run end to end.

On tones whose pitch is the label and whose loudness is the group, layer 1 must separate the labels
perfectly and layer 0 must not.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from speechprobe import plugins
from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError
from speechprobe.models import registry
from speechprobe.pipeline import run
from toy_family import TOY, write_pitch_tones


@pytest.fixture
def toy_registered(monkeypatch):
    """Register the toy family for one test; the registry is restored afterwards."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry.families()))
    return registry.register(TOY)


@pytest.fixture
def pitch_tones(tmp_path):
    return write_pitch_tones(tmp_path / "tones")


def test_registered_family_is_listed_and_its_windows_validate(toy_registered):
    assert registry.checkpoints()["toy-tiny"].family == "toy"
    assert registry.family_of_model_type("toy") is None  # no transformers model type declared
    assert {"full", "trimmed", "whole", "head"} <= set(registry.window_modes())
    RunConfig.of(models=["toy-tiny"], tasks=["x"], out=None, window="head").validate()
    with pytest.raises(ConfigError, match="--window 'tail': choose full, .*head"):
        RunConfig.of(models=["toy-tiny"], tasks=["x"], out=None, window="tail").validate()


@pytest.mark.slow
def test_pipeline_runs_a_registered_family_end_to_end(toy_registered, pitch_tones, tmp_path):
    cfg = RunConfig.of(
        models=["toy-tiny"],
        tasks=[str(pitch_tones)],
        out=tmp_path / "run",
        cache=tmp_path / "cache",
        folds=3,
        probes=["knn"],
        baselines=[],
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    results = run(cfg)
    f1 = results[results.metric == "macro_f1"].groupby("layer")["value"].mean()
    assert set(results["model"]) == {"toy-tiny"} and list(f1.index) == [0, 1]
    assert f1[1] == 1.0  # the spectrum layer knows pitch on held-out loudness groups
    assert f1[0] < 0.8  # log energy is equal for both pitches: no better than chance
    manifest = json.loads((cfg.out / "manifest.json").read_text())
    info = manifest["models"]["toy-tiny"]
    assert info["family"] == "toy" and info["source"] == "test:toy" and info["options"] == {"window": "whole"}
    assert info["revision"] == "toy:v1:seed0:random0"
    assert len(pd.read_csv(cfg.out / "results.csv")) == len(results)


def test_random_init_control_of_a_registered_family(toy_registered):
    adapter = registry.load_model("toy-tiny", window="head", random_init=True, seed=3)
    assert adapter.name == "toy-tiny+random" and adapter.info.revision == "toy:v1:seed3:random1"
    assert adapter.max_seconds() == 0.25


def test_an_installed_plugin_registers_through_its_entry_point(monkeypatch):
    class EntryPoint:
        name, value = "toy", "toy_plugin:TOY"

        def load(self):
            return [TOY]

    monkeypatch.setattr(registry, "_FAMILIES", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [EntryPoint()] if group == "speechprobe.families" else []
    )
    assert "toy-tiny" in registry.checkpoints() and "whisper-base" in registry.checkpoints()
    assert list(registry.families())[-1] == "toy"
