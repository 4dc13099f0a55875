"""Cue erasure: LEACE removes the linear information about a cue, and re-probing finds which task relied on it."""

import numpy as np
import pandas as pd
import pytest
from cue_data import cue_world, loader, with_random_twin, write_cue_run

from speechprobe.analysis import AnalysisSettings, analyse_features, erasure
from speechprobe.analysis.cues import cue_targets
from speechprobe.analysis.erasure import Span, erase_layers, group_columns, leace
from speechprobe.errors import SpeechprobeError
from speechprobe.probes import make_folds, probe_layers


def _erase(X_train, z, X_test, **options):
    span = Span(X_train)
    c_train, c_test = span.coords(X_train), span.coords(X_test)
    erase = leace(c_train, z, **options)
    return span.lift(X_train, c_train, erase(c_train)), span.lift(X_test, c_test, erase(c_test))


def test_erased_training_features_carry_no_linear_information_about_the_cue():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 2))
    X = rng.normal(size=(40, 100)) + z @ rng.normal(size=(2, 100))  # fewer clips than dimensions: span path
    X -= X.mean(axis=0)
    erased, _ = _erase(X, z, X[:5])
    cross = (erased - erased.mean(axis=0)).T @ (z - z.mean(axis=0))
    assert np.abs(cross).max() < 1e-8 * np.abs(X.T @ z).max()
    fit = np.linalg.lstsq(np.c_[erased, np.ones(40)], z, rcond=None)[0]  # in-sample OLS explains nothing
    residual = z - np.c_[erased, np.ones(40)] @ fit
    assert np.allclose(residual, z - z.mean(axis=0), atol=1e-6)


def test_the_span_eraser_is_the_full_width_eraser():
    """Without covariance shrinkage, LEACE fitted in the training rows' span equals LEACE in all D dimensions."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 80)) @ rng.normal(size=(80, 80))
    X_train, X_test = X[:20] - X[:20].mean(axis=0), X[20:] - X[:20].mean(axis=0)
    z = X_train[:, :3] @ rng.normal(size=(3, 2)) + rng.normal(size=(20, 2))
    ours = _erase(X_train, z, X_test, shrinkage=False)
    full = leace(X_train, z, shrinkage=False)
    assert np.allclose(ours[0], full(X_train), atol=1e-6) and np.allclose(ours[1], full(X_test), atol=1e-6)


def _deltas(rows: pd.DataFrame) -> pd.Series:
    part = rows[rows.metric == "delta_macro_f1"]
    return part.groupby(["target", "layer"])["value"].mean()


@pytest.mark.slow
def test_erasing_a_cue_hurts_the_task_built_on_it_and_only_there():
    world = cue_world()
    targets = cue_targets(world["cues"], world["groups"])
    groups = group_columns(["f0", "energy"])
    for probe in ("knn", "linear"):
        for task, cue, other in (("pitch", "f0", "energy"), ("loud", "energy", "f0")):
            folds = make_folds(world[task], world["groups"], 4, 0)
            rows = pd.DataFrame(erase_layers(world["features"]["deep"], world[task], targets, folds, groups, probe))
            delta = _deltas(rows)
            layer = 1  # both cues are linearly in layer 1
            assert delta[(cue, layer)] < -0.25, (probe, task, delta)
            assert abs(delta[(other, layer)]) < 0.1, (probe, task, delta)
    # F0 is only in layer 1: erasing it elsewhere changes nothing the pitch probe could use
    folds = make_folds(world["pitch"], world["groups"], 4, 0)
    rows = pd.DataFrame(erase_layers(world["features"]["deep"], world["pitch"], targets, folds, groups, "linear"))
    base = rows[(rows.metric == "macro_f1") & (rows.target == "none")].groupby("layer")["value"].mean()
    assert base[1] > 0.85 and base[0] < 0.7


def test_unerased_scores_are_the_runs_probe_scores():
    world = cue_world()
    folds = make_folds(world["pitch"], world["groups"], 4, 0)
    targets = cue_targets(world["cues"], world["groups"])
    feats = world["features"]["deep"]
    rows = pd.DataFrame(erase_layers(feats, world["pitch"], targets, folds, group_columns(["f0"]), "knn"))
    ours = rows[(rows.target == "none") & (rows.metric == "macro_f1")].set_index(["layer", "fold"])["value"]
    runs = pd.DataFrame(probe_layers(feats, world["pitch"], world["groups"], ["knn"], 4, 0))
    runs = runs[(runs.probe == "knn") & (runs.metric == "macro_f1")].set_index(["layer", "fold"])["value"]
    assert np.allclose(ours.sort_index(), runs.sort_index())


def test_constant_features_have_nothing_to_erase():
    """A layer constant on the training fold (a duration baseline on fixed-length clips) is left as it is."""
    world = cue_world()
    targets = cue_targets(world["cues"], world["groups"])
    folds = make_folds(world["pitch"], world["groups"], 4, 0)
    constant = np.ones((len(world["pitch"]), 1, 1), dtype=np.float32)
    rows = pd.DataFrame(erase_layers(constant, world["pitch"], targets, folds, group_columns(["f0", "energy"])))
    assert (rows[rows.metric == "delta_macro_f1"]["value"] == 0).all()


def test_a_cue_constant_on_the_training_fold_gives_no_score():
    world = cue_world()
    targets = cue_targets(world["cues"], world["groups"])
    folds = make_folds(world["pitch"], world["groups"], 4, 0)
    rows = pd.DataFrame(
        erase_layers(world["features"]["flat"], world["pitch"], targets, folds, group_columns(["duration"]))
    )
    assert rows[rows.target == "duration"]["value"].isna().all()
    with pytest.raises(SpeechprobeError, match="unknown cue group"):
        group_columns(["pitch"])


@pytest.mark.slow
def test_analysis_writes_rows_summary_figure_and_findings(tmp_path):
    world = with_random_twin(cue_world())
    run = write_cue_run(tmp_path / "run", world)
    options = {"erasure": {"probe": "linear", "groups": ["f0", "energy"]}}
    info = analyse_features(run, loader(world), analyses=[erasure.ANALYSIS], options=options)
    rows = pd.read_csv(run / "erasure.csv")
    assert list(rows.columns) == erasure.COLUMNS
    assert set(rows["target"]) == {"none", "f0", "energy"} and set(rows["probe"]) == {"linear"}
    assert "deep+random" in info["captions"]["figures/erasure_pitch.png"]
    summary = pd.read_csv(run / "erasure_summary.csv").set_index(["task", "model", "target", "layer"])
    row = summary.loc[("pitch", "deep", "f0", 1)]
    assert row["delta"] < -0.25 and row["lo"] <= row["delta"] <= row["hi"] and row["n"] == 4
    assert summary.loc[("pitch", "deep", "none", 1), "best"]  # the KNN results' best layer for pitch
    stated = erasure.findings(run)
    sentence = next(s for s in stated if s.startswith("pitch in deep layer 1"))
    assert "loses" in sentence and "F0 is erased" in sentence and "95% intervals" in sentence
    assert not any(s.startswith(("pitch in flat", "loud in flat")) for s in stated)  # the baseline: no sentence


def test_erasure_is_opt_in():
    from speechprobe.analysis.registry import choose

    assert not choose({})["erasure"] and choose({})["cues"]  # a run's defaults
    assert choose({"erasure": True})["erasure"] and choose({}, "+erasure,-cues") == {
        **choose({}),
        "erasure": True,
        "cues": False,
    }
    assert [name for name, on in choose({"mdl": True}, "cues,erasure").items() if on] == ["cues", "erasure"]
    settings = AnalysisSettings()
    assert erasure.ANALYSIS.options(settings)["probe"] == settings.primary_probe
