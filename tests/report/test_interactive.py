"""Interactive figures: specifications with the real values, safe to inline, drawn by plotly.js."""

from __future__ import annotations

import base64
import gzip
import json

import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis.curves import baseline_gain
from speechprobe.analysis.summary import num_layers
from speechprobe.figures import curves, fingerprints, headline
from speechprobe.report import chance_table, interactive, load_run
from speechprobe.report.headline import headline_table


@pytest.fixture()
def loaded(run_dir):
    data = load_run(run_dir)
    chance = chance_table(data).set_index("task")["chance_macro_f1"].to_dict()
    return data, chance


def test_headline_figure_carries_every_cell_with_its_hover(loaded):
    data, chance = loaded
    gains = baseline_gain(data.summary, data.baselines, "macro_f1", data.results, data.depths, data.primary)
    head = headline_table(data.summary, gains, chance, data.primary, data.baselines, data.depths)
    spec = headline.plotly(headline.headline_spec(head))
    trace = spec["data"][0]
    assert trace["x"] == ["emotion", "gender", "keyword"]
    assert trace["y"][:2] == ["whisper-base", "whisper-tiny"] and trace["y"][-1] == "mfcc (baseline)"
    row = head[(head["model"] == "whisper-base") & (head["task"] == "gender")].iloc[0]
    assert trace["z"][0][1] == pytest.approx(row["normalised"])
    assert f"{row['score']:.2f}" in trace["text"][0][1] and f"{row['gain']:+.2f}" in trace["text"][0][1]
    assert f"best layer {row['layer']} of 0–6" in trace["hovertext"][0][1]
    json.dumps(spec, allow_nan=False)  # JSON has no NaN: every missing value is null
    # the top margin holds the rotated labels ("keyword": 7 x 7 px x sin 30 deg) and the toolbar above them
    assert spec["layout"]["margin"]["t"] == 30 + 16 + int(7 * 7 * 0.5)


def test_curves_figure_clips_bands_marks_below_chance_and_labels_secondary_probes(loaded):
    data, chance = loaded
    rows = data.summary[(data.summary["task"] == "emotion") & (data.summary["metric"] == "macro_f1")].copy()
    rows.loc[(rows["model"] == "whisper-tiny") & (rows["layer"] == 0) & (rows["probe"] == "knn"), "mean"] = 0.1
    rows.loc[rows["model"] == "whisper-base", "ci95"] = 0.9  # a band that would leave [0, 1]
    depth = num_layers(data.summary, data.depths).to_dict()
    spec = curves.plotly(curves.curve_spec(rows, depth, "knn", chance["emotion"]))
    names = [t["name"] for t in spec["data"]]
    assert "mlp (secondary)" in names and "knn" in names
    band = next(t for t in spec["data"] if t.get("fill") == "toself" and t["legendgroup"] == "whisper-base")
    assert min(band["y"]) >= 0 and max(band["y"]) <= 1
    assert band["mode"] == "lines" and len(band["y"]) < 20  # no default markers along the band's edge
    below = next(t for t in spec["data"] if t["name"] == "below chance")
    assert below["x"] == [0.0] and below["y"] == [0.1] and "whisper-tiny layer 0" in below["text"][0]
    # 7 and 5 layers: relative depth on the x axis
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("relative depth")
    secondary = next(t for t in spec["data"] if t["name"] == "mlp (secondary)")
    assert secondary["visible"] == "legendonly"


def test_figure_html_cannot_be_closed_by_a_label():
    spec = {"data": [{"type": "scatter", "x": [0], "y": [1], "name": "</script><script>alert(1)</script>"}]}
    block = interactive.figure_html("k", spec, "caption <b>", 3)
    assert "</script><script>alert" not in block
    assert "caption &lt;b&gt;" in block and "<b>Figure 3.</b>" in block
    payload = block.split("type='application/json' id='spec-k'>", 1)[1].split("</script>", 1)[0]
    assert json.loads(payload)["data"][0]["name"] == "</script><script>alert(1)</script>"


def test_plotly_bundle_is_inlined_from_the_package():
    js = interactive.plotly_js()
    assert len(js) > 1_000_000 and "Plotly" in js[:100_000]
    assert "</script" not in js.lower()
    packed = interactive.plotly_js_packed()  # what the page carries: the same bundle, gzipped, in base64
    assert len(packed) < 0.5 * len(js) and gzip.decompress(base64.b64decode(packed)).decode() == js


def test_fingerprint_figure_places_every_model_and_task(loaded):
    table = pd.DataFrame(
        [
            {
                "model": m,
                "task": t,
                "probe": "knn",
                "metric": "macro_f1",
                "peak_layer": 2,
                "peak_score": 0.7,
                "peak_depth": 0.5,
                "peak_depth_lo": 0.25,
                "peak_depth_hi": 0.75,
                "peak_share": 0.8,
                "d90_layer": d90,
                "d90_depth": 0.25,
                "d90_depth_lo": 0.0,
                "d90_depth_hi": 0.5,
                "n_folds": 5,
            }
            for m in ("a", "b")
            for t, d90 in (("x", 1), ("y", -1))
        ]
    )
    spec = fingerprints.plotly(fingerprints.fingerprint_spec(table, "knn"))
    peaks = [t for t in spec["data"] if t["name"] == "peak"]
    d90 = [t for t in spec["data"] if t["name"] != "peak"]
    assert len(peaks) == 2 and all(len(t["x"]) == 2 for t in peaks)
    assert all(len(t["x"]) == 1 for t in d90)  # task y never rises above chance: no 90 % point
    assert peaks[0]["error_x"]["array"] == [0.25, 0.25] and peaks[0]["error_x"]["arrayminus"] == [0.25, 0.25]
    assert spec["layout"]["yaxis"]["ticktext"] == ["x", "y"]
    assert np.isfinite(spec["layout"]["height"])
