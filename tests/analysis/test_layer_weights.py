"""All-layers reference: the learned weighting finds the informative layer, and the in-fold single-layer
selection is compared with it honestly."""

import numpy as np
import pandas as pd
import pytest
import torch
from cue_data import cue_world, loader, with_random_twin, write_cue_run

from speechprobe.analysis import analyse_features, layer_weights
from speechprobe.analysis.layer_weights import (
    LayerWeightSettings,
    Split,
    make_splits,
    reference_rows,
    reference_table,
    span_coordinates,
)
from speechprobe.probes import make_folds


def _args(world: dict, name: str = "pitch") -> tuple:
    """``(labels, groups, folds)`` of a task."""
    labels, groups = world[name], world["groups"]
    return labels, groups, make_folds(labels, groups, 4, 0)


def test_weights_concentrate_on_the_layer_that_carries_the_label():
    world = cue_world()
    rows = pd.DataFrame(reference_rows(world["features"]["deep"], *_args(world), LayerWeightSettings(), 0))
    weights = rows[rows.metric == "weight"].groupby("layer")["value"].mean()
    assert weights.idxmax() == 1 and weights[1] > 0.5  # F0, hence the pitch label, is in layer 1 only
    assert np.allclose(rows[rows.metric == "weight"].groupby("fold")["value"].sum(), 1.0)
    f1 = rows[rows.metric == "macro_f1"]
    single = f1[f1.probe == "single_layer"].groupby("layer")["value"].mean()
    assert single[1] > 0.85 and single[0] < 0.7 and single[2] < 0.7
    assert set(f1[f1.probe == "selected_layer"]["layer"]) == {1}  # chosen inside every training fold
    assert f1[f1.probe == "weighted_sum"]["value"].mean() > 0.85
    again = pd.DataFrame(reference_rows(world["features"]["deep"], *_args(world), LayerWeightSettings(), 0))
    assert again.equals(rows)  # seeded and single-threaded: the same numbers every time


def test_folds_trained_in_chunks_give_the_same_numbers(monkeypatch):
    world = cue_world()
    settings = LayerWeightSettings(steps=40)
    together = pd.DataFrame(reference_rows(world["features"]["deep"], *_args(world), settings, 0))
    monkeypatch.setattr(layer_weights, "MEMORY_BUDGET", 1)  # one fold at a time
    apart = pd.DataFrame(reference_rows(world["features"]["deep"], *_args(world), settings, 0))
    pd.testing.assert_frame_equal(apart, together, rtol=1e-6)


def test_inner_folds_stay_inside_the_outer_training_fold():
    world = cue_world()
    splits, notes = make_splits(*_args(world), 3, 0)
    assert not notes and len(splits) == 4
    for sp in splits:
        assert not (sp.train & sp.test).any() and len(sp.inner) == 3
        for inner in sp.inner:
            assert not (inner & ~sp.train).any()
            held_out = set(world["groups"][sp.train & ~inner])
            assert not held_out & set(world["groups"][inner])  # grouped like the outer folds
    tiny = [(np.arange(6), np.arange(6, 8))]
    splits, notes = make_splits(world["pitch"][:8], world["groups"][:8], tiny, 3, 0)
    assert splits[0].inner == [] and "no inner cross-validation" in notes[0]


def test_span_coordinates_keep_every_inner_product_with_the_training_rows():
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(1, 2, 30, 64)).astype(np.float32))
    train = np.zeros(30, dtype=bool)
    train[:20] = True
    P = span_coordinates(X, [Split(train, ~train, [])])
    assert P.shape == (1, 2, 30, 20)
    for layer in range(2):
        full = X[0, layer].double() @ X[0, layer][train].double().T
        ours = P[0, layer].double() @ P[0, layer][train].double().T
        assert torch.allclose(full, ours, atol=1e-3)


def test_verdicts_follow_the_interval_of_the_difference():
    folds = make_folds(*_args(cue_world())[:2], 4, 0)

    def rows(weighted, selected):
        out = []
        for k in range(4):
            out.append(("pitch", "m", None, "weighted_sum", k, "macro_f1", weighted[k]))
            out.append(("pitch", "m", 1, "selected_layer", k, "macro_f1", selected[k]))
            out.append(("pitch", "m", 1, "single_layer", k, "macro_f1", selected[k]))
        return pd.DataFrame(out, columns=layer_weights.COLUMNS)

    better = reference_table(rows([0.9, 0.92, 0.91, 0.93], [0.6, 0.61, 0.62, 0.6]), "pitch", folds)
    assert better["verdict"].iloc[0] == "weighted sum better" and better["delta"].iloc[0] > 0.25
    worse = reference_table(rows([0.6, 0.61, 0.62, 0.6], [0.9, 0.92, 0.91, 0.93]), "pitch", folds)
    assert worse["verdict"].iloc[0] == "best single layer better"
    noisy = reference_table(rows([0.9, 0.5, 0.8, 0.6], [0.6, 0.8, 0.7, 0.75]), "pitch", folds)
    assert noisy["verdict"].iloc[0] == "equal" and noisy["delta_lo"].iloc[0] < 0 < noisy["delta_hi"].iloc[0]


@pytest.mark.slow
def test_analysis_writes_rows_figure_and_verdicts(tmp_path):
    world = with_random_twin(cue_world())
    run = write_cue_run(tmp_path / "run", world, tasks=("pitch",))
    options = {"layer_weights": {"steps": 80}}
    info = analyse_features(run, loader(world), analyses=[layer_weights.ANALYSIS], options=options)
    rows = pd.read_csv(run / "all_layers.csv")
    assert list(rows.columns) == layer_weights.COLUMNS
    assert set(rows["model"]) == {"deep", "deep+random"}  # the one-layer baseline has nothing to weigh
    assert set(rows["probe"]) == {"weighted_sum", "single_layer", "selected_layer"}
    assert rows[(rows.probe == "weighted_sum") & (rows.metric == "macro_f1")]["layer"].isna().all()
    assert "deep+random" in info["captions"]["figures/layer_weights_pitch.png"]
    stated = layer_weights.findings(run)
    assert stated[-1].startswith("All-layers reference over 2 model × task pairs")
    assert any(s.startswith("pitch in deep:") for s in stated)
    assert info["done"]["layer_weights"]  # recorded: a second plan finds nothing to do
    again = analyse_features(run, loader(world), analyses=[layer_weights.ANALYSIS], options=options)
    assert again["seconds"]["layer_weights"] == 0
