"""The analysis contract: one registration plugs an analysis in; plan decides what is pending, execute runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_run import SMALL, make_features, write_run

from speechprobe.analysis import (
    Analysis,
    AnalysisResult,
    Figure,
    analyse_features,
    contract,
    plan,
    register,
)
from speechprobe.analysis import registry as analysis_registry
from speechprobe.errors import SpeechprobeError
from speechprobe.report import build_report


@pytest.fixture()
def registry():
    """Registrations made by a test are undone after it."""
    analysis_registry.registered()  # the built-in analyses are in before the copy is taken
    saved = dict(contract._REGISTRY)
    yield
    contract._REGISTRY.clear()
    contract._REGISTRY.update(saved)


def _loader(features: dict, calls: list | None = None):
    def load(model, hashes):
        if calls is not None:
            calls.append(model)
        return np.stack([features[model][h] for h in hashes])

    return load


def layer_norms(unit) -> AnalysisResult:
    """A toy model-scope analysis, written as a pure function of the unit: mean feature norm per layer."""
    norms = np.linalg.norm(unit.features(), axis=-1).mean(axis=0)
    rows = pd.DataFrame({"model": unit.model, "task": unit.task, "layer": np.arange(len(norms)), "norm": norms})
    path = unit.figure_path("norms")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG fake")
    return AnalysisResult(tables={"norms.csv": rows}, figures=[Figure(path, f"Norms of {unit.model}.")])


def model_count(unit) -> pd.DataFrame:
    """A toy task-scope analysis comparing every model of a task (returns a bare DataFrame)."""
    dims = {m: unit.features(m).shape[1] for m in unit.models}
    return pd.DataFrame([{"task": unit.task, "models": len(dims), "layers": sum(dims.values())}])


@pytest.mark.slow
def test_one_registration_plugs_an_analysis_in(tmp_path: Path, registry) -> None:
    run = write_run(tmp_path / "run", **SMALL)
    features = make_features(run)
    register(Analysis("norms", layer_norms, tables={"norms.csv": ["model", "task", "layer", "norm"]}))
    register(Analysis("count", model_count, tables={"count.csv": ["task", "models", "layers"]}, scope="task"))
    calls: list[str] = []
    info = analyse_features(run, _loader(features, calls), n_permutations=9, analyses=["selection", "norms", "count"])
    norms = pd.read_csv(run / "norms.csv")
    assert len(norms) == 5 + 1 and set(norms["model"]) == {"whisper-tiny", "mfcc"}
    count = pd.read_csv(run / "count.csv").iloc[0]
    assert count["models"] == 2 and count["layers"] == 6
    # Features are loaded once per unit and shared by its analyses (selection + norms), plus once for the
    # task-scope unit.
    assert sorted(calls) == ["mfcc", "mfcc", "whisper-tiny", "whisper-tiny"]
    assert info["captions"]["figures/norms_whisper-tiny_emotion.png"] == "Norms of whisper-tiny."
    assert set(info["done"]) == {"selection", "norms", "count"}
    page = build_report(run).read_text()
    assert "Norms of whisper-tiny." in page  # the report shows the recorded caption
    # Nothing pending on a rerun; a deleted output makes its unit pending again, for that analysis alone.
    assert plan(run, n_permutations=9, analyses=["selection", "norms", "count"]).jobs == []
    (run / "figures" / "norms_mfcc_emotion.png").unlink()
    todo = plan(run, n_permutations=9, analyses=["selection", "norms", "count"])
    assert [(j.model, [a.name for a in j.analyses]) for j in todo.jobs] == [("mfcc", ["norms"])]
    assert todo.reused == 4


def test_an_interrupted_execution_resumes(tmp_path: Path, registry) -> None:
    run = write_run(tmp_path / "run", **SMALL)
    features = make_features(run)

    def flaky(unit):
        if unit.model == "whisper-tiny":
            raise KeyboardInterrupt  # the run is killed while this unit is being analysed
        return pd.DataFrame([{"model": unit.model, "task": unit.task, "value": 1.0}])

    register(Analysis("flaky", flaky, tables={"flaky.csv": ["model", "task", "value"]}))
    with pytest.raises(KeyboardInterrupt):
        analyse_features(run, _loader(features), analyses=["flaky"])
    done = json.loads((run / "analysis.json").read_text())["done"]["flaky"]
    assert list(done) == [json.dumps(["mfcc", "emotion"])]  # the finished unit is recorded

    def fixed(unit):
        return pd.DataFrame([{"model": unit.model, "task": unit.task, "value": 2.0}])

    register(Analysis("flaky", fixed, tables={"flaky.csv": ["model", "task", "value"]}))  # same options
    analyse_features(run, _loader(features), analyses=["flaky"])
    rows = pd.read_csv(run / "flaky.csv").set_index("model")["value"]
    assert rows.to_dict() == {"mfcc": 1.0, "whisper-tiny": 2.0}  # mfcc kept, whisper-tiny computed now


def test_registration_checks_the_contract(registry) -> None:
    with pytest.raises(SpeechprobeError, match="scope"):
        register(Analysis("bad", model_count, scope="model"))
    with pytest.raises(SpeechprobeError, match="must start with columns"):
        register(Analysis("bad", model_count, tables={"bad.csv": ["layer", "model", "task"]}))
    with pytest.raises(SpeechprobeError, match="already written by 'selection'"):
        register(Analysis("bad", model_count, tables={"permutation.csv": ["model", "task"]}))


def test_a_declaration_by_convention_reads_its_module(monkeypatch) -> None:
    import types

    from speechprobe.analysis import mdl

    toy = types.ModuleType("plugin.toy_sums", "Toy sums: the ``sum`` of each layer (:func:`numpy.sum`).\n\nMore.")
    toy.compute, toy._options = model_count, lambda settings: {"seed": settings.seed}
    monkeypatch.setitem(__import__("sys").modules, "plugin.toy_sums", toy)
    a = Analysis.of("plugin.toy_sums", {"sums.csv": ["task", "sum"]}, cost="minutes")
    assert (a.name, a.compute, a.options, a.findings, a.finalise) == ("toy_sums", model_count, toy._options, None, None)
    assert (a.scope, a.flag, a.default, a.cost, a.section) == ("task", None, True, "minutes", "Toy sums")
    assert a.description == "Toy sums: the sum of each layer (numpy.sum)." and a.tables == {"sums.csv": ["task", "sum"]}
    # a module named after a run setting is switched by it; its findings are found; a keyword overrides
    assert (mdl.ANALYSIS.flag, mdl.ANALYSIS.findings, mdl.ANALYSIS.section) == ("mdl", mdl.findings, "Analyses")
    assert Analysis.of("plugin.toy_sums", scope="run", section="Toys").section == "Toys"


def test_cue_repeats_changes_only_the_cue_analyses_fingerprints():
    from speechprobe.analysis import cues, embeddings, erasure, layer_weights
    from speechprobe.analysis.contract import AnalysisSettings
    from speechprobe.analysis.plan import _fingerprint

    every, first = AnalysisSettings(repeats=5), AnalysisSettings(repeats=5, cue_repeats=1)
    for analysis in (cues.ANALYSIS, erasure.ANALYSIS, layer_weights.ANALYSIS):
        assert _fingerprint(analysis, every, {}) != _fingerprint(analysis, first, {}), analysis.name
    assert _fingerprint(embeddings.ANALYSIS, every, {}) == _fingerprint(embeddings.ANALYSIS, first, {})
