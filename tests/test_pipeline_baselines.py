"""The prosodic baselines (egemaps, prosody) in a real run: results rows, the cue stage reusing prosody's
items, and the report and console naming the best baseline (on the tone set pitch is the label)."""

import json

import pandas as pd
import pytest

from speechprobe.cli.output import print_best
from speechprobe.config import RunConfig
from speechprobe.pipeline import run


@pytest.mark.slow
def test_egemaps_and_prosody_are_probed_and_the_best_is_named(tones, tiny_whisper, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = RunConfig.of(
        models=[str(tiny_whisper)],
        tasks=[str(tones)],
        out=out,
        folds=4,
        baselines=["loudness", "egemaps", "prosody"],
        window="trimmed",
        probes=["knn", "linear"],
        progress=False,
        permutations=0,
        embeddings=False,
        layer_weights=False,
        fingerprints=False,
        similarity=False,
        mdl=False,
        cache=tmp_path / "cache",  # cold: the cue stage's counts below are this run's own
    )
    results = run(cfg)
    assert {"egemaps", "prosody", "loudness"} <= set(results["model"])
    assert set(results.loc[results["model"].isin(["egemaps", "prosody"]), "layer"]) == {0}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["egemaps"]["hidden_size"] == 88 and manifest["models"]["prosody"]["hidden_size"] == 22
    prosody, cues = manifest["extraction"]["prosody/tones"], manifest["extraction"]["cues/tones"]
    assert prosody["computed"] == 24 and (cues["computed"], cues["reused"]) == (0, 24)  # copied, not recomputed
    cue_models = set(pd.read_csv(out / "cues.csv")["model"])
    assert "egemaps" in cue_models and "prosody" not in cue_models  # prosody's features are the cues themselves

    summary = pd.read_csv(out / "summary.csv")
    f1 = summary[summary.metric == "macro_f1"].set_index(["model", "probe"])["mean"]
    for probe in ("knn", "linear"):  # F0 is the label; the tones share one level (prosody's other cues dilute F0)
        assert f1[("egemaps", probe)] > 0.9 and f1[("prosody", probe)] > f1[("loudness", probe)] + 0.3
    score = f1.xs("knn", level="probe")  # the primary probe
    best = "egemaps"  # the best baseline on the primary probe: the one the report must name
    assert score[best] > max(score["prosody"], score["loudness"])
    main = pd.read_csv(out / "main_table.csv")
    assert main["best_baseline"].tolist() == [best]
    assert main["gain"].iloc[0] == pytest.approx(main["macro_f1"].iloc[0] - score[best], abs=1e-9)
    report = (out / "report.md").read_text()
    table = report.split("### Per model and task", 1)[1]  # the findings table: one row per model and task
    row = next(line for line in table.splitlines() if line.startswith("| tones | tiny-whisper"))
    assert f"| {best} | {score[best]:.3f} | {main['gain'].iloc[0]:.3f} |" in row
    capsys.readouterr()
    print_best(out)
    assert f"{main['gain'].iloc[0]:+.3f} ({best})" in capsys.readouterr().out
