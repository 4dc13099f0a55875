"""The decoder-layers analysis on constructed decoder states and lens items: the three curves on one depth axis,
their intervals, the lens's calibration and rank, and the sentence on where they part."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speechprobe.analysis.contract import AnalysisSettings, Unit
from speechprobe.analysis.decoder_layers import (
    CSV,
    batch_calibrated,
    compute,
    findings,
    lens_label_scores,
)
from speechprobe.features.store import FeatureStore

N, LABELS = 40, ["calm", "loud"]


def _run(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], N // 2)
    hashes = [f"{i:064x}" for i in range(N)]
    store = FeatureStore(tmp_path / "features")
    spaces = {k: store.space("m", "w", {"kind": k}) for k in ("last", "lens")}
    for i, h in enumerate(hashes):
        states = rng.normal(0, 1, (3, 4)).astype(np.float32)
        states[1:, 0] += 4.0 * y[i]  # decoder layers 1 and 2 hold the label, layer 0 (embeddings) does not
        spaces["last"].put(h, states)
        logp = np.log(np.full((3, 2), 0.5)) + rng.normal(0, 0.3, (3, 2))
        logp[:, 0] += 2.0  # the decoder likes "calm" at every layer
        logp[2, y[i]] += 3.0  # only the last layer's read-out tells the labels apart
        ranks = np.where(np.arange(2) == logp.argmax(1)[:, None], 0, 1)
        spaces["lens"].put(h, np.concatenate([logp, ranks], axis=1).astype(np.float32))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    info = {
        "prompt_id": "choose",
        "prompt": "Choose one of: calm, loud.",
        "store": str(store.root),
        "spaces": {k: s.root.name for k, s in spaces.items()},
        "rules": {"last": "the last prompt position"},
        "labels": LABELS,
        "phrasings": [["calm"], ["loud"]],
    }
    manifest = {"zeroshot": {"tasks": {"t": {"by_model": {"m": {"decoder": info}}}}}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    enc = [("m", "t", layer, "knn", f, "macro_f1", 0.6 + 0.1 * layer + 0.01 * f) for layer in (0, 1) for f in range(5)]
    pd.DataFrame(enc, columns=["model", "task", "layer", "probe", "fold", "metric", "value"]).to_csv(
        run_dir / "results.csv", index=False
    )
    clips = pd.DataFrame({"content_hash": hashes, "label": [LABELS[v] for v in y], "group": [""] * N})
    settings = AnalysisSettings(n_folds=5, seed=0)
    return Unit("t", "m", ("m",), clips, settings, run_dir, pd.DataFrame(), loader=None)


@pytest.mark.slow
def test_three_curves_on_one_depth_axis_and_where_they_part(tmp_path):
    unit = _run(tmp_path)
    result = compute(unit)
    table = result.tables[CSV].set_index(["side", "layer"])
    assert list(table.loc["encoder_probe"].depth) == [0, 1]  # encoder layers, then the decoder from depth 2
    state = table.loc["decoder_probe:last"]
    assert list(state.depth) == [2, 3, 4] and state.decoder.all()
    assert state.loc["dec0", "macro_f1"] < 0.75 and (state.loc[["dec1", "dec2"], "macro_f1"] > 0.95).all()
    np.testing.assert_allclose(table.loc[("encoder_probe", "enc1"), "macro_f1"], 0.72)  # the run's fold mean
    lens, bc = table.loc["lens"], table.loc["lens_bc"]
    assert lens.loc["dec1", "macro_f1"] < 0.6  # raw: "calm" for almost every clip
    assert bc.loc["dec2", "macro_f1"] > 0.95 and bc.loc["dec2", "ci_low"] > 0.85 and bc.loc["dec2", "true_rank"] == 0
    assert bc.loc["dec0", "ci_low"] < 0.5 < bc.loc["dec2", "ci_low"]
    assert (table["chance"] == 0.5).all() and (result.figures[0].path.stat().st_size > 1000)
    twin = json.loads(result.figures[0].path.with_suffix(".plotly.json").read_text())  # the interactive twin
    lines = [t for t in twin["data"] if t.get("mode") == "lines+markers"]
    assert [t["name"] for t in lines][:2] == ["encoder probe", "decoder-state probe (last prompt position)"]
    assert len(lines) == 4 and twin["layout"]["xaxis"]["ticktext"][:3] == ["enc0", "enc1", "dec0"]
    result.tables[CSV].to_csv(unit.run_dir / CSV, index=False)
    (sentence,) = findings(unit.run_dir)
    assert "above chance from decoder layer dec2" in sentence and "part at dec0" not in sentence
    assert "part at dec1" in sentence  # the state holds the label at dec1; the read-out only from dec2


def test_lens_label_scores_and_batch_calibration():
    lens = np.array([[[*np.log([0.2, 0.05, 0.6]), 0, 3, 0]]])  # one clip, one layer; 3 phrasings (2 + 1), ranks
    scores = lens_label_scores(lens, [["a", "a2"], ["b"]])
    np.testing.assert_allclose(np.exp(scores[0, 0]), [0.125, 0.6])
    raw = np.log(np.array([[[0.9, 0.1]], [[0.6, 0.4]]]))  # both clips lean to the first label
    cal = batch_calibrated(raw)
    assert list(cal[:, 0].argmax(-1)) == [0, 1]
    np.testing.assert_allclose(np.exp(cal).mean(0), [[1.0, 1.0]])  # each label's share over its mean share
