"""Figures: layer curves (spec values, one file per task, no leaked figures), heatmaps, embeddings, zero-shot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis import summarize
from speechprobe.analysis.summary import layer_rows, num_layers
from speechprobe.figures import curves
from speechprobe.rundir import slug


@pytest.fixture()
def summary() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model, depth in (("whisper", 5), ("wavlm", 9), ("mfcc", 1), ("librosa", 1)):
        for task in ("emotion", "org/gender"):
            for probe in ("knn", "linear"):
                for layer in range(depth):
                    for fold in range(3):
                        v = 0.3 + 0.4 * np.sin(np.pi * layer / max(depth - 1, 1)) + rng.normal(0, 0.03)
                        rows.append((model, task, layer, probe, fold, "macro_f1", v))
    rows.append(("whisper", "emotion", None, "zeroshot:qa:p1", 0, "macro_f1", 0.5))
    rows.append(("mfcc", "accent", 0, "knn", 0, "macro_f1", 0.3))  # baseline-only task
    rows.append(("wavlm", "emotion", 0, "kmeans", 0, "nmi", 0.1))
    return summarize(pd.DataFrame(rows, columns=["model", "task", "layer", "probe", "fold", "metric", "value"]))


def _check_png(path: Path) -> None:
    assert path.stat().st_size > 0
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert float(img[..., :3].std()) > 0.01  # not a single flat colour


def test_layer_curves_write_one_png_per_task(summary: pd.DataFrame, tmp_path: Path) -> None:
    before = plt.get_fignums()
    specs = curves.task_specs(summary, num_layers(summary).to_dict(), "knn", {"emotion": 0.25, "org/gender": 0.5})
    paths = list(curves.draw_tasks(tmp_path, specs).values())
    assert [p.name for p in paths] == ["layers_accent.png", "layers_emotion.png", f"layers_{slug('org/gender')}.png"]
    for path in paths:
        _check_png(path)
        assert path.with_suffix(".svg").stat().st_size > 0
    assert sorted(p.suffix for p in (tmp_path / "figures").iterdir()) == [".png"] * 3 + [".svg"] * 3
    assert plt.get_fignums() == before
    assert specs["accent"].multi == [] and list(specs["accent"].baselines["model"]) == ["mfcc"]  # baselines only
    (tmp_path / "figures" / "layers_emotion.png").write_bytes(b"kept")
    assert curves.draw_tasks(tmp_path, specs, redraw=False)["emotion"].read_bytes() == b"kept"


def test_layer_curve_spec_values(summary: pd.DataFrame) -> None:
    rows = layer_rows(summary, "macro_f1")
    emotion = rows[rows["task"] == "emotion"]
    spec = curves.curve_spec(emotion, {"whisper": 5, "wavlm": 9}, "knn", chance=0.5)
    assert spec.multi == ["wavlm", "whisper"] and spec.relative  # 5 and 9 layers: relative depth
    knn = spec.curves[(spec.curves["model"] == "whisper") & (spec.curves["probe"] == "knn")]
    assert list(knn["x"]) == [0.0, 0.25, 0.5, 0.75, 1.0] and knn["primary"].all()
    source = emotion[(emotion["model"] == "whisper") & (emotion["probe"] == "knn")].sort_values("layer")
    assert np.allclose(knn["mean"], source["mean"]) and (knn["lo"] >= 0).all() and (knn["hi"] <= 1).all()
    low = spec.curves[spec.curves["primary"] & (spec.curves["mean"] < 0.5)]
    assert len(low) and spec.below == [f"{m} layer {layer}" for m, layer in zip(low["model"], low["layer"])]
    assert not spec.curves.loc[~spec.curves["primary"], "below"].any()  # only the primary probe is marked
    base = emotion[(emotion["model"].isin(["mfcc", "librosa"])) & (emotion["probe"] == "knn")]
    assert list(spec.baselines["model"]) == list(base.sort_values("mean", ascending=False)["model"])
    same = curves.curve_spec(emotion, {"whisper": 9, "wavlm": 9}, "knn")
    assert not same.relative and same.chance is None and not same.curves["below"].any()
    assert len(same.curves[(same.curves["model"] == "whisper") & (same.curves["probe"] == "knn")]) == 5  # of 9


def test_heatmaps(summary: pd.DataFrame, tmp_path: Path) -> None:
    from speechprobe.analysis.summary import best_layers
    from speechprobe.figures.heatmaps import plot_best_heatmap, plot_layer_heatmaps

    before = plt.get_fignums()
    depth = num_layers(summary)
    best = plot_best_heatmap(best_layers(summary), depth, tmp_path / "heatmap_best.png")
    assert best == tmp_path / "heatmap_best.png"
    _check_png(best)
    assert best.with_suffix(".svg").stat().st_size > 0
    layers = plot_layer_heatmaps(layer_rows(summary, "macro_f1"), depth, tmp_path)
    assert [p.name for p in layers] == ["heatmap_layers_wavlm.png", "heatmap_layers_whisper.png"]
    for path in layers:
        _check_png(path)
    empty = summary.iloc[0:0]
    assert plot_best_heatmap(best_layers(empty), depth, tmp_path / "none.png") is None
    assert plot_layer_heatmaps(layer_rows(empty, "macro_f1"), depth, tmp_path) == []
    assert plt.get_fignums() == before


@pytest.mark.slow
def test_tsne_first_best_last(tmp_path: Path) -> None:
    from functools import partial

    from speechprobe.figures.embedding import plot_embedding, umap_available

    plot_tsne, plot_umap = partial(plot_embedding, method="tsne"), partial(plot_embedding, method="umap")

    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 12)
    features = rng.normal(size=(len(labels), 4, 60)).astype(np.float32)
    features[:, 2, :3] += 6 * np.eye(3)[np.repeat([0, 1, 2], 12)]
    path = plot_tsne(
        features,
        labels,
        {"first": 0, "best": 2, "last": 3},
        tmp_path / "tsne_m_t.png",
        seed=0,
        max_points=30,
        title="m · t",
    )
    _check_png(path)
    assert path.with_suffix(".svg").stat().st_size > 0
    # Layers embedded two at a time in processes: the same picture, pixel for pixel.
    args = (features, labels, {"first": 0, "best": 2, "last": 3})
    parallel = plot_tsne(*args, tmp_path / "tsne_2.png", seed=0, max_points=30, title="m · t", n_jobs=2)
    assert parallel.read_bytes() == path.read_bytes()
    assert parallel.with_suffix(".svg").read_bytes() == path.with_suffix(".svg").read_bytes()  # salted ids
    with pytest.raises(ValueError, match="one label per item"):
        plot_tsne(features, labels[:-1], {"first": 0}, tmp_path / "x.png")
    if not umap_available():
        with pytest.raises(ImportError, match="umap-learn"):
            plot_umap(features, labels, {"first": 0}, tmp_path / "u.png")
    else:
        _check_png(plot_umap(features, labels, {"first": 0, "best": 2}, tmp_path / "u.png"))


def test_zeroshot_scatter(summary: pd.DataFrame, tmp_path: Path) -> None:
    from speechprobe.figures.zeroshot_scatter import plot_zeroshot_scatter, zeroshot_points

    points = zeroshot_points(summary)
    assert len(points) == 1
    row = points.iloc[0]
    assert (row["model"], row["task"], row["prompt"], row["zeroshot"]) == ("whisper", "emotion", "qa:p1", 0.5)
    own = layer_rows(summary, "macro_f1")
    own = own[(own["model"] == "whisper") & (own["task"] == "emotion")]["mean"].max()
    assert row["probe_score"] == pytest.approx(own) and row["reference"] == "same model"
    path = plot_zeroshot_scatter(summary, tmp_path / "zeroshot_vs_probe.png")
    _check_png(path)
    assert plot_zeroshot_scatter(summary[~summary["probe"].str.startswith("zeroshot:")], tmp_path / "n.png") is None
