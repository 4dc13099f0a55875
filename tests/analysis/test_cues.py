"""Acoustic-cue probes: ridge R² and Pearson r per layer find the cues where they were put."""

import numpy as np
import pandas as pd
import pytest
from cue_data import cue_world, loader, with_random_twin, write_cue_run

from speechprobe.analysis import analyse, analyse_features, cues
from speechprobe.analysis.cues import CUE_COLUMNS, TARGETS, _r2_pearson, cue_summary, cue_targets, probe_cues
from speechprobe.errors import SpeechprobeError
from speechprobe.figures.base import random_pairs
from speechprobe.models.acoustic_cues import CUES
from speechprobe.probes import make_folds
from speechprobe.report import build_report


def _r2(rows: pd.DataFrame, cue: str, layer: int) -> float:
    part = rows[(rows.target == cue) & (rows.layer == layer) & (rows.metric == "r2")]
    return float(part["value"].mean())


def test_ridge_probes_find_each_cue_in_its_layers():
    world = cue_world()
    folds = make_folds(world["pitch"], world["groups"], 4, 0)
    targets = cue_targets(world["cues"], world["groups"])
    rows = pd.DataFrame(probe_cues(world["features"]["deep"], targets, folds))
    assert set(rows["probe"]) == {"ridge"} and set(rows["metric"]) == {"r2", "pearson"}
    assert _r2(rows, "f0_mean", 1) > 0.8  # put in layer 1 only
    assert _r2(rows, "f0_mean", 0) < 0.2 and _r2(rows, "f0_mean", 2) < 0.2
    assert min(_r2(rows, "energy_mean", layer) for layer in range(3)) > 0.8  # in every layer
    assert _r2(rows, "hnr", 1) < 0.2  # never put anywhere
    pearson = rows[(rows.target == "f0_mean") & (rows.layer == 1) & (rows.metric == "pearson")]["value"]
    assert pearson.min() > 0.85
    assert rows[rows.target == "duration"]["value"].isna().all()  # constant: no score, not a fake 0
    assert rows[rows.target == "jitter"]["value"].notna().all()  # undefined on some clips: fitted on the rest


def test_r2_is_against_the_training_mean():
    y = np.array([1.0, 2.0, 3.0])
    assert _r2_pearson(y, y, train_mean=10.0)[0] == pytest.approx(1.0)
    assert _r2_pearson(y, np.full(3, 10.0), train_mean=10.0)[0] == pytest.approx(0.0)
    # predicting the test fold's own mean would score 0 against that mean, but well against the training mean
    assert _r2_pearson(y, np.full(3, 2.0), train_mean=10.0)[0] > 0.9
    assert np.isnan(_r2_pearson(np.ones(3), y, train_mean=0.0)[0])


def test_speaker_relative_f0_removes_each_groups_level():
    world = cue_world()
    targets = cue_targets(world["cues"], world["groups"])
    rel = targets[:, TARGETS.index("f0_mean_rel")]
    means = pd.Series(rel).groupby(world["groups"]).mean()
    assert np.allclose(means, 0.0)
    f0 = world["cues"][:, CUES.index("f0_mean")]
    assert np.allclose(rel, f0 - pd.Series(f0).groupby(world["groups"]).transform("mean"))
    assert np.isnan(cue_targets(world["cues"], None)[:, len(CUES) :]).all()


@pytest.mark.slow
def test_analysis_writes_rows_heatmaps_and_findings(tmp_path):
    world = with_random_twin(cue_world())
    run = write_cue_run(tmp_path / "run", world)
    info = analyse_features(run, loader(world), analyses=[cues.ANALYSIS])
    rows = pd.read_csv(run / "cues.csv")
    assert list(rows.columns) == CUE_COLUMNS
    assert set(rows["model"]) == {"deep", "flat", "deep+random"} and set(rows["task"]) == {"pitch", "loud"}
    summary = cue_summary(rows)
    f0 = summary[(summary.target == "f0_mean") & (summary.metric == "r2")].set_index(["model", "task", "layer"])
    assert f0.loc[("flat", "pitch", 0), "mean"] > 0.9  # the baseline holds the cue itself
    assert f0.loc[("deep+random", "pitch", 1), "mean"] < 0.2
    # one heatmap per task; the random twin is drawn beside its trained model, with a caption saying so
    assert sorted(info["figures"]) == ["figures/cues_loud.png", "figures/cues_pitch.png"]
    assert "deep+random" in info["captions"]["figures/cues_pitch.png"]
    assert any("duration" in n and "constant" in n for n in info["notes"])
    stated = cues.findings(run)
    assert [s.split(" (")[0] for s in stated] == ["Acoustic cues in deep", "Acoustic cues in deep+random"]
    assert "F0 mean" in stated[0]
    before = (run / "cues.csv").read_bytes()
    again = analyse_features(run, loader(world), analyses=[cues.ANALYSIS], reuse=False)  # recomputed: same bytes
    assert (run / "cues.csv").read_bytes() == before and again["captions"] == info["captions"]
    output = analyse(run, "cues", loader(world))
    assert output.analysis == "cues" and output.findings == stated
    assert {f.section for f in output.figures} == {"Acoustic cues"} and len(output.figures) == 2
    build_report(run)
    md = (run / "report.md").read_text()
    assert "linearly encodes each clip's acoustic cues on pitch" in md and stated[0] in md


def test_no_stored_cues_is_a_note_not_a_failure(tmp_path):
    world = cue_world()
    run = write_cue_run(tmp_path / "run", world, tasks=("pitch",))

    def no_cues(model, hashes):
        if model == "cues":
            raise SpeechprobeError("model cues: manifest.json names no feature space")
        return loader(world)(model, hashes)

    info = analyse_features(run, no_cues, analyses=[cues.ANALYSIS])
    assert any("cues skipped for task pitch: no stored acoustic cues" in n for n in info["notes"])
    assert not (run / "cues.csv").exists()


def test_random_pairs():
    assert random_pairs(["a", "a+random", "b", "c+random"]) == {"a": "a+random", "b": None, "c+random": None}
