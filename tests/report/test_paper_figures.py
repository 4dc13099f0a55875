"""The static figures: layer curves (one panel per model, below-chance layers named) and the headline."""

from __future__ import annotations

from speechprobe.analysis.summary import num_layers
from speechprobe.figures import curves, headline
from speechprobe.report import load_run
from speechprobe.report.figures import curves_caption


def test_panels_are_drawn_and_below_chance_layers_named(run_dir, tmp_path):
    data = load_run(run_dir)
    rows = data.summary[(data.summary["task"] == "emotion") & (data.summary["metric"] == "macro_f1")].copy()
    rows.loc[(rows["model"] == "whisper-base") & (rows["layer"] == 1) & (rows["probe"] == "knn"), "mean"] = 0.2
    depth = num_layers(data.summary, data.depths).to_dict()
    spec = curves.curve_spec(rows, depth, "knn", chance=0.25)
    png, below, relative = curves.draw(spec, tmp_path / "p.png", "emotion"), spec.below, spec.relative
    assert png.is_file() and png.with_suffix(".svg").is_file()
    assert below == ["whisper-base layer 1"] and relative  # 7 and 5 layers
    caption = curves_caption("emotion", "knn", relative, below, "5 × 5 folds (5 repeats)", png.name)
    assert "figures/p.png has one panel per model" in caption and "whisper-base layer 1" in caption
    assert "mean over 5 × 5 folds (5 repeats) with its 95% interval" in caption
    assert "relative depth" in caption


def test_no_multi_layer_model_a_baselines_figure_and_no_interactive_one(run_dir, tmp_path):
    data = load_run(run_dir)
    rows = data.summary[(data.summary["model"] == "mfcc") & (data.summary["metric"] == "macro_f1")]
    spec = curves.curve_spec(rows[rows["task"] == "emotion"], {"mfcc": 1}, "knn", chance=0.25)
    assert spec.multi == [] and list(spec.baselines["model"]) == ["mfcc"] and curves.plotly(spec) is None
    svg = curves.draw(spec, tmp_path / "p.png").with_suffix(".svg").read_text()
    assert "mfcc (knn)" in svg and "chance" in svg
    assert curves.curve_spec(rows.iloc[:0], {"mfcc": 1}, "knn") is None


def test_headline_png_is_written(run_dir, tmp_path):
    from speechprobe.analysis.curves import baseline_gain
    from speechprobe.report import chance_table
    from speechprobe.report.headline import headline_table

    data = load_run(run_dir)
    chance = chance_table(data).set_index("task")["chance_macro_f1"].to_dict()
    gains = baseline_gain(data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary)
    head = headline_table(data.summary, gains, chance, data.primary, data.baselines, data.depths)
    png = headline.draw(headline.headline_spec(head), tmp_path / "headline.png")
    assert png.is_file() and png.stat().st_size > 5000 and png.with_suffix(".svg").is_file()
    svg = png.with_suffix(".svg").read_text()
    assert "whisper-base" in svg and "mfcc (baseline)" in svg
