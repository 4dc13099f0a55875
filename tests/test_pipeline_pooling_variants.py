"""``--pooling-variants`` end to end on a tiny random Whisper and the MFCC baseline: the variants are stored from
the extraction's one pass, the default results are unchanged, and the analysis reaches the run directory."""

import json

import pandas as pd
import pytest

from speechprobe.pipeline import run
from test_pipeline import _cfg


@pytest.mark.slow
def test_pooling_variants_run(tones, tiny_whisper, tmp_path):
    cache = tmp_path / "cache"
    twice = dict(repeats=2, cue_repeats=1)  # the variants probed on the first of the run's 2 partitions
    run(_cfg(tones, tmp_path / "a", model=tiny_whisper, cache=cache, analyses="none", **twice))
    run(_cfg(tones, tmp_path / "b", model=tiny_whisper, cache=cache, analyses="pooling_variants", edge_ms=60, **twice))
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "results.csv").read_bytes() == (b / "results.csv").read_bytes()
    models = json.loads((b / "manifest.json").read_text())["models"]
    whisper = models["tiny-whisper0"]
    assert whisper["edge_frames"] == 3 and set(whisper["pooling_spaces"]) == {"mean", "first:3", "last:3", "max"}
    assert (
        whisper["pooling_spaces"]["mean"]
        == whisper["space"]
        == json.loads((a / "manifest.json").read_text())["models"]["tiny-whisper0"]["space"]
    )  # the default space, reused
    assert "pooling_spaces" not in models["mfcc"]
    summary = pd.read_csv(b / "pooling_variants_summary.csv")
    assert set(summary["model"]) == {"tiny-whisper0"} and len(summary) == 5 * 3  # variants x layers, primary probe
    assert set(summary["probe"]) == {"knn"}  # the primary probe only, though the run has two
    mean = summary[summary["variant"] == "mean"].set_index(["probe", "layer"])["score"]
    folds = pd.read_csv(b / "pooling_variants.csv")
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3]  # 4 folds x the first repeat, of 8 in results.csv
    headline = pd.read_csv(b / "results.csv").query("model == 'tiny-whisper0' and metric == 'macro_f1'")
    headline = headline[(headline["probe"] == "knn") & (headline["fold"] < 4)]
    assert sorted(headline["fold"].unique()) != sorted(pd.read_csv(b / "results.csv")["fold"].dropna().unique())
    assert mean.to_dict() == pytest.approx(headline.groupby(["probe", "layer"])["value"].mean().to_dict())
    handed = json.loads((b / "analyses" / "pooling_variants.json").read_text())
    assert len(handed["findings"]) == 1 and "tiny-whisper0 × tones" in handed["findings"][0]
    assert any("mfcc × tones left out" in n for n in handed["notes"]) and handed["figures"]
