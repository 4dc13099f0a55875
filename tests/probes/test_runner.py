import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from speechprobe.errors import ConfigError
from speechprobe.probes import (
    ProbeSettings,
    cross_validate_layers,
    make_probe,
    probe_layers,
    probe_params,
    read_predictions,
    write_predictions,
)
from speechprobe.rundir import slug

PROBES = ("knn", "mlp", "linear")


def _mean(rows, layer: int, probe: str, metric: str) -> float:
    table = pd.DataFrame(rows)
    sel = table[(table.layer == layer) & (table.probe == probe) & (table.metric == metric)]
    assert len(sel) > 0
    return float(sel.value.mean())


@pytest.fixture(scope="module")
def rows(layered):
    features, y, groups = layered
    return probe_layers(features, y, groups, probes=PROBES, n_folds=3, seed=0)


def test_rows_are_tidy_complete_and_ordered(rows):
    assert all(set(row) == {"layer", "probe", "fold", "metric", "value"} for row in rows)
    assert all(type(r["layer"]) is int and type(r["fold"]) is int and type(r["value"]) is float for r in rows)
    keys = [(r["layer"], r["probe"], r["fold"], r["metric"]) for r in rows]
    expected = []
    for layer in range(3):
        for probe in PROBES:
            expected += [(layer, probe, fold, metric) for fold in range(3) for metric in ("macro_f1", "accuracy")]
            expected.append((layer, probe, 0, "macro_f1_oof"))  # one out-of-fold row per repeat
        expected += [(layer, "kmeans", fold, metric) for fold in range(3) for metric in ("nmi", "ami")]
    assert keys == expected


@pytest.mark.parametrize("probe", PROBES)
def test_separable_layer_scores_high_and_noise_layers_near_chance(rows, probe):
    assert _mean(rows, 1, probe, "macro_f1") > 0.9
    assert _mean(rows, 1, probe, "accuracy") > 0.9
    assert _mean(rows, 0, probe, "macro_f1") < 0.5  # pure noise, 4 classes
    assert _mean(rows, 2, probe, "macro_f1") < 0.5  # constant layer: degenerate but handled


def test_nmi_tracks_cluster_structure(rows):
    assert _mean(rows, 1, "kmeans", "nmi") > 0.9
    assert _mean(rows, 0, "kmeans", "nmi") < 0.2
    assert _mean(rows, 2, "kmeans", "nmi") == 0.0


def test_shuffled_labels_score_near_chance(layered):
    features, y, _ = layered
    shuffled = np.random.default_rng(0).permutation(y)
    rows = probe_layers(features[:, 1:2], shuffled, None, probes=PROBES, n_folds=3, seed=0)
    for probe in PROBES:
        assert _mean(rows, 0, probe, "macro_f1") < 0.5


def test_same_seed_same_rows_and_parallel_matches_serial(layered, rows, tmp_path):
    features, y, groups = layered
    again = probe_layers(features, y, groups, probes=PROBES, n_folds=3, seed=0)
    assert again == rows
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=features.shape)
    mm[:] = features
    mm.flush()
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    parallel = probe_layers(mm, list(y), list(groups), probes=PROBES, n_folds=3, seed=0, n_jobs=2, progress=True)
    assert parallel == rows


def test_seed_changes_folds(layered, rows):
    features, y, groups = layered
    other = probe_layers(features, y, groups, probes=PROBES, n_folds=3, seed=1)
    assert [r["value"] for r in other] != [r["value"] for r in rows]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probes": ("knn", "svm")}, r"unknown probe 'svm'; choose from knn, mlp, linear"),
        ({"n_folds": 1}, r"n_folds is 1"),
        ({"n_folds": 31}, r"class 'c0' has 30 items, fewer than n_folds=31"),
    ],
)
def test_bad_settings_raise_config_errors(layered, kwargs, message):
    features, y, groups = layered
    with pytest.raises(ConfigError, match=message):
        probe_layers(features, y, groups, **kwargs)


def test_shape_mismatches_raise_config_errors(layered):
    features, y, _ = layered
    with pytest.raises(ConfigError, match=r"\(items, layers, dims\)"):
        probe_layers(features[:, 0], y, None)
    with pytest.raises(ConfigError, match=r"got 119 labels for 120 feature rows"):
        probe_layers(features, y[:-1], None)


def test_kmeans_over_many_chunks_is_identical_across_runs_and_n_jobs():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 300)  # > 256 training rows: k-means reduces over several chunks
    features = (rng.normal(size=(900, 2, 8)) + 0.7 * (np.arange(900) // 300)[:, None, None]).astype(np.float32)
    serial = probe_layers(features, y, None, probes=(), n_folds=2, seed=0)
    assert serial == probe_layers(features, y, None, probes=(), n_folds=2, seed=0)
    assert serial == probe_layers(features, y, None, probes=(), n_folds=2, seed=0, n_jobs=2)
    assert {r["probe"] for r in serial} == {"kmeans"}


def test_out_of_fold_rows_pool_the_stored_predictions(layered):
    features, y, groups = layered
    result = cross_validate_layers(features[:, :2], y, groups, probes=("knn",), n_folds=3, seed=0, repeats=2)
    oof = result.predictions
    assert oof.pred.shape == (2, 1, 2, len(y)) and (oof.pred >= 0).all()
    assert list(oof.classes) == ["c0", "c1", "c2", "c3"] and oof.n_splits == 3
    table = pd.DataFrame(result.rows)
    assert sorted(table.loc[table.metric == "macro_f1", "fold"].unique()) == list(range(6))  # repeat * 3 + k
    for layer in (0, 1):
        for r in (0, 1):
            value = table[(table.layer == layer) & (table.metric == "macro_f1_oof") & (table.fold == r)].value
            expected = f1_score(oof.y, oof.pred[r, 0, layer], labels=np.arange(4), average="macro", zero_division=0)
            assert float(value.iloc[0]) == pytest.approx(expected)
        folds = table[(table.layer == layer) & (table.metric == "macro_f1") & (table.probe == "knn")]
        for j, (_, test) in enumerate(result.plan.folds):
            r = j // 3
            expected = f1_score(oof.y[test], oof.pred[r, 0, layer, test], labels=np.arange(4), average="macro")
            assert float(folds[folds.fold == j].value.iloc[0]) == pytest.approx(expected)
    np.testing.assert_array_equal(oof.fold_of[1][result.plan.folds[4][1]], 4)
    assert _mean(result.rows, 1, "knn", "macro_f1_oof") > 0.9


def test_per_fold_macro_f1_counts_classes_absent_from_the_test_fold(blob_maker):
    X, y = blob_maker(n_per_class=6, n_classes=3, sep=20.0)
    groups = np.array([f"{label}-{i % 2}" for i, label in enumerate(y)])  # two speakers per class
    features = X[:, None, :]
    rows = pd.DataFrame(probe_layers(features, y, groups, probes=("knn",), cv="logo", settings=ProbeSettings(knn_k=1)))
    per_fold = rows[(rows.metric == "macro_f1")].value
    # each test fold is one speaker of one class, predicted right: F1 1 for its class, 0 for the two absent ones
    assert len(per_fold) == 6 and np.allclose(per_fold, 1 / 3)
    assert float(rows[rows.metric == "macro_f1_oof"].value.iloc[0]) == 1.0


def test_scorers_are_a_mapping_and_a_new_metric_is_one_entry(layered):
    features, y, groups = layered

    def errors(y_true, y_pred, labels):
        return float(np.sum(y_true != y_pred))

    rows = probe_layers(
        features[:, 1:2], y, groups, probes=("knn",), n_folds=3, scorers={"errors": errors}, cluster_scorers={}
    )
    table = pd.DataFrame(rows)
    assert set(table.metric) == {"errors", "macro_f1_oof"} and set(table.probe) == {"knn"}
    assert table[table.metric == "errors"].value.sum() < 12  # separable layer: few errors over 120 items


def test_probe_settings_reach_the_probes(layered):
    features, y, groups = layered
    settings = ProbeSettings(knn_k=1, mlp_hidden=8, mlp_epochs=5, linear_c=0.01)
    assert make_probe("knn", 0, settings).n_neighbors == 1
    mlp = make_probe("mlp", 3, settings)
    assert (mlp.hidden_units, mlp.max_iter, mlp.random_state, mlp.solver) == (8, 5, 3, "adam")
    assert make_probe("linear", 0, settings).C == 0.01
    params = probe_params(["knn", "mlp"], 0, settings)
    assert params["knn"]["classifier"]["n_neighbors"] == 1 and params["mlp"]["classifier"]["max_iter"] == 5
    one = probe_layers(features[:, :1], y, groups, probes=("knn",), n_folds=3, settings=ProbeSettings(knn_k=1))
    five = probe_layers(features[:, :1], y, groups, probes=("knn",), n_folds=3)
    assert [r["value"] for r in one] != [r["value"] for r in five]
    with pytest.raises(ConfigError, match="--mlp-solver 'rmsprop'"):
        probe_layers(features, y, groups, settings=ProbeSettings(mlp_solver="rmsprop"))


def test_tune_chooses_on_inner_folds_and_records_the_choice(layered):
    features, y, groups = layered
    result = cross_validate_layers(features[:, 1:2], y, groups, probes=("knn", "linear"), n_folds=3, tune=True)
    tuned = result.predictions.tuned
    assert len(tuned) == 2 * 3 and {t["probe"] for t in tuned} == {"knn", "linear"}
    assert all(
        t["params"].get("n_neighbors") in (1, 5, 15) or t["params"].get("C") in (0.01, 0.1, 1.0, 10.0) for t in tuned
    )
    assert _mean(result.rows, 0, "linear", "macro_f1") > 0.9


def test_predictions_round_trip(layered, tmp_path):
    features, y, groups = layered
    result = cross_validate_layers(features[:, :1], y, groups, probes=("knn",), n_folds=3)
    result.predictions.ids = [f"clip{i}" for i in range(len(y))]
    path = write_predictions(tmp_path, "whisper/base", "emo tion", result.predictions)
    assert path == tmp_path / "predictions" / f"{slug('whisper/base')}__{slug('emo tion')}.npz"
    assert path.name.startswith("whisper_base-") and "__emo_tion-" in path.name  # the run directory's one slug
    back = read_predictions(tmp_path, "whisper/base", "emo tion")
    np.testing.assert_array_equal(back.pred, result.predictions.pred)
    np.testing.assert_array_equal(back.fold_of, result.predictions.fold_of)
    assert back.probes == ("knn",) and back.ids[3] == "clip3" and back.model == "whisper/base"
    assert list(back.groups) == list(groups) and read_predictions(tmp_path, "x", "y") is None
