"""Layer-curve figures: names, content, atomic writes, no leaked figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from speechprobe.analysis import plot_layer_curves, summarize
from speechprobe.analysis.plots import _draw_task
from speechprobe.analysis.summary import layer_rows, num_layers
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


def test_plot_layer_curves_writes_pngs(summary: pd.DataFrame, tmp_path: Path) -> None:
    before = plt.get_fignums()
    out = tmp_path / "figures"
    paths = plot_layer_curves(summary, out, chance={"emotion": 0.25, "org/gender": 0.5})
    assert [p.name for p in paths] == ["layers_accent.png", "layers_emotion.png", f"layers_{slug('org/gender')}.png"]
    for path in paths:
        _check_png(path)
        assert path.with_suffix(".svg").stat().st_size > 0
    assert sorted(p.suffix for p in out.iterdir()) == [".png"] * 3 + [".svg"] * 3
    assert plt.get_fignums() == before


def test_plot_layer_curves_relative_depth_and_other_metric(summary: pd.DataFrame, tmp_path: Path) -> None:
    paths = plot_layer_curves(summary, tmp_path, relative_depth=True)
    assert len(paths) == 3
    _check_png(paths[1])
    nmi = plot_layer_curves(summary, tmp_path / "nmi", metric="nmi")
    assert [p.name for p in nmi] == ["layers_emotion.png"]
    _check_png(nmi[0])
    assert plot_layer_curves(summary, tmp_path / "none", metric="accuracy") == []


def test_draw_task_lines(summary: pd.DataFrame) -> None:
    rows = layer_rows(summary, "macro_f1")
    task_rows = rows[rows["task"] == "emotion"]
    ax = Figure().subplots()
    colours = {m: (0.0, 0.0, 0.0) for m in rows["model"].unique()}
    _draw_task(ax, task_rows, num_layers(summary), colours, ["knn", "linear"], relative_depth=True)
    lines = {line.get_label(): line for line in ax.get_lines()}
    curves = {"whisper (knn)", "whisper (linear)", "wavlm (knn)", "wavlm (linear)"}
    assert curves <= set(lines)
    baselines = sorted(label.split(" ")[0] for label in set(lines) - curves)
    assert baselines == ["librosa", "mfcc"]  # one horizontal line per baseline, at its best probe
    for name in ("whisper (knn)", "wavlm (linear)"):
        x = lines[name].get_xdata()
        assert x[0] == 0.0 and x[-1] == 1.0
    assert len(lines["wavlm (knn)"].get_xdata()) == 9
    mfcc = task_rows[task_rows["model"] == "mfcc"]["mean"].max()
    [mfcc_line] = [line for label, line in lines.items() if label.startswith("mfcc")]
    assert mfcc_line.get_ydata()[0] == pytest.approx(mfcc)


def test_layer_curves_prefix_and_depths(summary: pd.DataFrame, tmp_path: Path) -> None:
    paths = plot_layer_curves(summary, tmp_path, relative_depth=True, prefix="layers_rel", depths={"whisper": 9})
    expected = ["layers_rel_accent.png", "layers_rel_emotion.png", f"layers_rel_{slug('org/gender')}.png"]
    assert [p.name for p in paths] == expected
    rows = layer_rows(summary, "macro_f1")
    ax = Figure().subplots()
    colours = {m: (0.0, 0.0, 0.0) for m in rows["model"].unique()}
    depth = num_layers(summary, {"whisper": 9})
    _draw_task(ax, rows[rows["task"] == "emotion"], depth, colours, ["knn", "linear"], relative_depth=True)
    whisper = next(line for line in ax.get_lines() if line.get_label() == "whisper (knn)")
    assert whisper.get_xdata()[-1] == pytest.approx(4 / 8)  # layers 0-4 of 9: the curve stops half way


def test_heatmaps(summary: pd.DataFrame, tmp_path: Path) -> None:
    from speechprobe.analysis import plot_best_heatmap, plot_layer_heatmaps

    before = plt.get_fignums()
    best = plot_best_heatmap(summary, tmp_path / "heatmap_best.png")
    assert best == tmp_path / "heatmap_best.png"
    _check_png(best)
    assert best.with_suffix(".svg").stat().st_size > 0
    layers = plot_layer_heatmaps(summary, tmp_path)
    assert [p.name for p in layers] == ["heatmap_layers_wavlm.png", "heatmap_layers_whisper.png"]
    for path in layers:
        _check_png(path)
    empty = summary.iloc[0:0]
    assert plot_best_heatmap(empty, tmp_path / "none.png") is None and plot_layer_heatmaps(empty, tmp_path) == []
    assert plt.get_fignums() == before


@pytest.mark.slow
def test_tsne_first_best_last(tmp_path: Path) -> None:
    from speechprobe.analysis import plot_tsne, plot_umap, umap_available

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
    from speechprobe.analysis import plot_zeroshot_scatter
    from speechprobe.analysis.plots import zeroshot_points

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
