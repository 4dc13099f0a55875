"""Layer similarity: debiased CKA and mutual k-NN, on matrices with known answers and on a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_run import make_clips, make_manifest, make_results, write_run

from speechprobe.analysis import analyse
from speechprobe.analysis import similarity as sim_mod
from speechprobe.analysis.similarity import (
    SIMILARITY_COLUMNS,
    centred_gram,
    cka_matrix,
    compute_similarity,
    debiased_cka,
    hsic_matrix,
    mutual_knn,
    random_halves,
    similarity_findings,
)
from speechprobe.errors import SpeechprobeError


def _song_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, written out term by term."""
    n = len(K)
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    trace = np.trace(K @ L)
    sums = (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
    cross = 2 / (n - 2) * (one @ K @ L @ one)
    return (trace + sums - cross) / (n * (n - 3))


def _biased_cka(X: np.ndarray, Y: np.ndarray) -> float:
    X, Y = X - X.mean(0), Y - Y.mean(0)
    return float(np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


def test_hsic_equals_song_estimator() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 7))
    Y = X @ rng.normal(size=(7, 3)) + rng.normal(size=(40, 3))
    K, L = X @ X.T, Y @ Y.T
    h = hsic_matrix(np.stack([K, L]))
    assert h[0, 1] == pytest.approx(_song_hsic(K, L), rel=1e-10)
    assert h[1, 1] == pytest.approx(_song_hsic(L, L), rel=1e-10)
    idx = np.arange(0, 40, 3)
    assert hsic_matrix(np.stack([K, L]), idx)[0, 1] == pytest.approx(
        _song_hsic(K[np.ix_(idx, idx)], L[np.ix_(idx, idx)])
    )


def test_hsic_in_small_chunks_is_the_same(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    grams = np.stack([centred_gram(rng.normal(size=(30, 5))) for _ in range(3)])
    whole = hsic_matrix(grams)
    monkeypatch.setattr(sim_mod, "CHUNK_ELEMENTS", 50)  # one row per chunk
    np.testing.assert_allclose(hsic_matrix(grams), whole, rtol=1e-12)


def test_cka_is_one_with_itself_and_invariant() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 12)) * np.linspace(0.2, 5, 12)
    Q = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    assert debiased_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert debiased_cka(X, X @ Q) == pytest.approx(1.0, abs=1e-10)  # orthogonal transform
    assert debiased_cka(X, 7.5 * X + 3.0) == pytest.approx(1.0, abs=1e-10)  # isotropic scaling, shift
    A = rng.normal(size=(12, 12))
    assert debiased_cka(X, X @ A) < 0.99  # not invariant to any linear map


def test_debiased_cka_is_near_zero_for_independent_features() -> None:
    rng = np.random.default_rng(3)
    values, biased = [], []
    for _ in range(5):
        X, Y = rng.normal(size=(200, 64)), rng.normal(size=(200, 64))
        values.append(debiased_cka(X, Y))
        biased.append(_biased_cka(X, Y))
    assert abs(np.mean(values)) < 0.01 and max(abs(v) for v in values) < 0.03
    assert min(biased) > 0.2  # the plain estimator is far from 0 here: the debiasing matters


def test_cka_tracks_shared_signal() -> None:
    rng = np.random.default_rng(4)
    signal = rng.normal(size=(150, 4))
    X = np.hstack([signal, rng.normal(size=(150, 20))])
    Y = np.hstack([signal @ rng.normal(size=(4, 4)), 0.3 * rng.normal(size=(150, 20))])
    Z = rng.normal(size=(150, 24))
    M = cka_matrix([X, Y, Z])
    np.testing.assert_allclose(M, M.T, atol=1e-12)
    assert M[0, 1] > 0.3 and abs(M[0, 2]) < 0.05


def test_mutual_knn() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 10))
    Q = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    assert mutual_knn(X, X, k=10) == 1.0
    assert mutual_knn(X, 3 * X @ Q, k=10) == pytest.approx(1.0)  # cosine neighbours: rotation and scale
    chance = np.mean([mutual_knn(X, rng.normal(size=(120, 10)), k=10) for _ in range(3)])
    assert chance == pytest.approx(10 / 119, abs=0.04)  # independent features: overlap by chance
    with pytest.raises(SpeechprobeError, match="k"):
        mutual_knn(X[:5], X[:5], k=5)


def test_random_halves_keep_groups_apart() -> None:
    groups = np.repeat(np.array([f"g{i}" for i in range(10)]), 4)
    halves = random_halves(groups, n_splits=3, seed=0, min_size=4)
    assert len(halves) == 6
    for a, b in zip(halves[::2], halves[1::2]):
        assert not set(groups[a]) & set(groups[b]) and len(a) + len(b) == 40
        assert abs(len(a) - len(b)) <= 4


def _features(models: dict[str, int], shared: bool) -> dict[str, dict[str, np.ndarray]]:
    """Per model and clip hash, (layers, 8) features: layer l of every model mixes one shared signal."""
    rng = np.random.default_rng(0)
    hashes = list(dict.fromkeys(h for t in ("emotion", "gender") for h in make_clips(t)["content_hash"]))
    base = rng.normal(size=(len(hashes), 8))
    out = {}
    for model, depth in models.items():
        feats = rng.normal(size=(len(hashes), depth, 8))
        for layer in range(depth):
            weight = (1 - layer / max(depth - 1, 1)) if shared else 0.0
            feats[:, layer] += 3 * weight * base
        out[model] = {h: feats[i].astype(np.float32) for i, h in enumerate(hashes)}
    return out


def _loader(features):
    def load(model, hashes):
        return np.stack([features[model][h] for h in hashes])

    return load


@pytest.mark.slow
def test_layer_similarity_on_a_run(tmp_path: Path) -> None:
    tasks, models = ["emotion", "gender"], ["whisper-base", "whisper-tiny", "mfcc"]
    run = write_run(tmp_path / "run", tasks=tasks, models=models)
    features = _features({"whisper-base": 7, "whisper-tiny": 5, "mfcc": 1}, shared=True)
    out = analyse(run, "similarity", _loader(features), k=5, n_splits=2)
    table = pd.read_csv(run / "similarity.csv")
    assert list(table.columns) == SIMILARITY_COLUMNS
    assert len(table) == 2 * 13**2 and set(table["measure"]) == {"cka", "mutual_knn"}
    assert table["n_clips"].iloc[0] == 48 + 24 and table["k"].iloc[0] == 5
    diag = table[(table["model_a"] == table["model_b"]) & (table["layer_a"] == table["layer_b"])]
    np.testing.assert_allclose(diag["value"], 1.0, atol=1e-6)
    cka = table[table["measure"] == "cka"].set_index(["model_a", "layer_a", "model_b", "layer_b"])["value"]
    assert cka[("whisper-base", 0, "whisper-tiny", 0)] > 0.5  # both carry the shared signal at depth 0
    assert abs(cka[("whisper-base", 6, "whisper-tiny", 4)]) < 0.1  # neither carries it at the top
    assert cka[("whisper-base", 0, "whisper-base", 1)] == pytest.approx(cka[("whisper-base", 1, "whisper-base", 0)])
    assert table["spread"].notna().all()
    assert {Path(f.path).name for f in out.figures} == {
        "similarity_layers_whisper-base.png",
        "similarity_layers_whisper-tiny.png",
        "similarity_models.png",
        "similarity_baselines.png",
    }
    assert all((run / f.path).is_file() for f in out.figures)
    assert any("whisper-base and whisper-tiny" in s for s in out.findings)
    saved = json.loads((run / "analyses" / "similarity.json").read_text())
    assert saved["tables"] == ["similarity.csv"] and len(saved["figures"]) == 4


@pytest.mark.slow
def test_random_init_twin_sits_beside_its_model(tmp_path: Path) -> None:
    manifest = make_manifest(tasks=["emotion"], models=["whisper-tiny", "mfcc"])
    manifest["models"]["whisper-tiny+random"] = {**manifest["models"]["whisper-tiny"], "space": "space-r"}
    run = write_run(tmp_path / "run", manifest=manifest, tasks=["emotion"], models=["whisper-tiny", "mfcc"])
    features = _features({"whisper-tiny": 5, "whisper-tiny+random": 5, "mfcc": 1}, shared=False)
    out = analyse(run, "similarity", _loader(features), k=5, n_splits=2)
    names = {Path(f.path).name: f.caption for f in out.figures}
    assert "similarity_layers_whisper-tiny_random.png" not in names  # drawn in its twin's figure
    assert "whisper-tiny+random" in names["similarity_layers_whisper-tiny.png"]
    assert "Random-init" in names["similarity_baselines.png"]
    assert any(s.startswith("In whisper-tiny+random") for s in out.findings)


@pytest.mark.slow
def test_unreadable_model_is_left_out_with_a_note(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "run", make_results(tasks=["emotion"]), tasks=["emotion"], models=["whisper-tiny", "mfcc"]
    )
    features = _features({"whisper-tiny": 5}, shared=False)

    def load(model, hashes):
        if model not in features:
            raise SpeechprobeError(f"model {model}: features are not in the store")
        return _loader(features)(model, hashes)

    out = analyse(run, "similarity", load, k=5, n_splits=1)
    assert any("mfcc left out" in n for n in out.notes)
    assert not any(Path(f.path).name == "similarity_baselines.png" for f in out.figures)


def test_clips_are_subsampled_when_many(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", tasks=["emotion", "gender"], models=["whisper-tiny", "mfcc"])
    features = _features({"whisper-tiny": 5, "mfcc": 1}, shared=False)
    sim, notes = compute_similarity(run, _loader(features), max_clips=30, k=5, n_splits=1)
    again, _ = compute_similarity(run, _loader(features), max_clips=30, k=5, n_splits=1)
    assert sim.n_clips == 30 and notes == ["a seeded random 30 of the run's 72 clips"]
    np.testing.assert_array_equal(sim.values["cka"], again.values["cka"])  # seeded


def test_a_constant_representation_has_no_similarity(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", tasks=["emotion"], models=["whisper-tiny", "mfcc"])
    features = _features({"whisper-tiny": 5, "mfcc": 1}, shared=False)
    features["mfcc"] = {h: np.ones((1, 4), np.float32) for h in features["mfcc"]}  # e.g. one sample rate
    sim, _ = compute_similarity(run, _loader(features), k=5, n_splits=1)
    assert not any("like mfcc" in s for s in similarity_findings(sim))
    i = sim.index("mfcc")[0]
    for measure in ("cka", "mutual_knn"):
        assert np.isnan(sim.values[measure][i]).all() and np.isnan(sim.values[measure][:, i]).all()
        assert np.isfinite(sim.values[measure][np.ix_(sim.index("whisper-tiny"), sim.index("whisper-tiny"))]).all()
