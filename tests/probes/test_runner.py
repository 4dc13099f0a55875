import numpy as np
import pandas as pd
import pytest

from speechprobe.errors import ConfigError
from speechprobe.probes import probe_layers

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
