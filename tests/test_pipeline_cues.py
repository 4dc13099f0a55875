"""The cue analyses in `speechprobe run` / `speechprobe probe`: flags, files, report, and a real effect
(on the tone dataset pitch is the label, so erasing F0 takes the probes down to chance)."""

import json

import pandas as pd
import pytest

from speechprobe.config import RunConfig
from speechprobe.pipeline import load_extracted, probe_and_report, run, run_extract


def _cfg(tones, out, model, **kw):
    base = dict(
        models=[str(model)],
        tasks=[str(tones)],
        out=out,
        folds=4,
        baselines=["mfcc"],
        window="trimmed",
        probes=["knn"],
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    return RunConfig.of(**{**base, **kw})


@pytest.mark.slow
def test_run_with_every_cue_analysis(tones, tiny_whisper, tmp_path):
    out = tmp_path / "run"
    results = run(_cfg(tones, out, tiny_whisper, erasure=True, report=True))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["models"]) == {"tiny-whisper0", "mfcc"}  # the cues are a target, never a probed model
    cues_extracted = manifest["extraction"]["cues/tones"]  # the session cache may hold them already
    assert manifest["targets"]["cues"]["space"] and cues_extracted["computed"] + cues_extracted["reused"] == 24
    assert "cues" not in set(results["model"])
    cues = pd.read_csv(out / "cues.csv")
    f0 = cues[(cues.target == "f0_mean") & (cues.metric == "r2") & (cues.model == "mfcc")]["value"]
    assert f0.mean() > 0.5  # the tones' pitch is in the MFCC functionals
    erasure = pd.read_csv(out / "erasure.csv")
    delta = erasure[erasure.metric == "delta_macro_f1"].groupby(["model", "target"])["value"].mean()
    for model in ("mfcc", "tiny-whisper0"):  # pitch is the label: erasing F0 costs most, energy or duration less
        assert delta[(model, "f0")] < -0.15
        assert delta[(model, "f0")] < min(delta[(model, "energy")], delta[(model, "duration")]) - 0.1
    erased = erasure[(erasure.metric == "macro_f1") & (erasure.target == "f0") & (erasure.model == "tiny-whisper0")]
    assert abs(erased["value"].mean() - 1 / 3) < 0.1  # down to chance
    weights = pd.read_csv(out / "all_layers.csv")
    assert set(weights["model"]) == {"tiny-whisper0"}
    html = (out / "report.html").read_text()
    for caption in (
        "acoustic cues on tones: ridge-regression R²",
        "when LEACE erases a cue group",
        "All-layers reference",
    ):
        assert caption in html
    assert "loses" in html and "learned weighting of all layers" in html  # findings sentences
    done = json.loads((out / "analysis.json").read_text())["done"]
    assert {"cues", "erasure", "layer_weights"} <= set(done)


@pytest.mark.slow
def test_flags_turn_the_analyses_off(tones, tiny_whisper, tmp_path):
    out = tmp_path / "run"
    run(_cfg(tones, out, tiny_whisper, cue_probes=False, layer_weights=False))
    assert not (out / "cues.csv").exists() and not (out / "all_layers.csv").exists()
    assert not (out / "erasure.csv").exists()
    assert json.loads((out / "manifest.json").read_text())["targets"] == {}


@pytest.mark.slow
def test_probe_stage_runs_erasure_on_stored_cues(tones, tiny_whisper, tmp_path):
    out = tmp_path / "run"
    clips, state = run_extract(_cfg(tones, out, tiny_whisper, repeats=2, knn_k=3))
    cfg, clips, state = load_extracted(out)
    cfg.analyses.erasure, cfg.analyses.layer_weights, cfg.analyses.cue_probes, cfg.analyses.report = (
        True,
        False,
        False,
        True,
    )
    probe_and_report(cfg, clips, state)
    assert (out / "erasure.csv").is_file() and not (out / "cues.csv").exists()
    assert not (out / "all_layers.csv").exists()
    # The unerased probe is the run's own: same repeated fold plan, same k, same fixed-label Macro-F1.
    keys = ["model", "layer", "fold"]
    results = pd.read_csv(out / "results.csv")
    results = results[(results.probe == "knn") & (results.metric == "macro_f1")].set_index(keys)["value"]
    erasure = pd.read_csv(out / "erasure.csv")
    unerased = erasure[(erasure.target == "none") & (erasure.metric == "macro_f1")].set_index(keys)["value"]
    assert set(unerased.index) == set(results.index) and unerased.index.get_level_values("fold").max() == 7
    pd.testing.assert_series_equal(unerased.sort_index(), results.sort_index())
    _every_quoted_score_is_the_summarys_or_names_its_plan(out, "")
    # --cue-repeats 1: the same numbers on the first partition only (folds 0-3 of 0-7).
    cfg.cv.cue_repeats = 1
    probe_and_report(cfg, clips, state, "overwrite")
    first = pd.read_csv(out / "erasure.csv")
    first = first[(first.target == "none") & (first.metric == "macro_f1")].set_index(keys)["value"]
    assert first.index.get_level_values("fold").max() == 3
    pd.testing.assert_series_equal(
        first.sort_index(), unerased[unerased.index.get_level_values("fold") <= 3].sort_index()
    )
    _every_quoted_score_is_the_summarys_or_names_its_plan(out, "on the first of 2 repeats")


def _every_quoted_score_is_the_summarys_or_names_its_plan(out, plan: str) -> None:
    """Each "layer L (its best layer, PROBE Macro-F1 X)" in the findings, report.md included: X is summary.csv's
    mean for that (model, task, layer, probe, macro_f1), or the sentence names the folds it was measured on."""
    import re

    from speechprobe.analysis.erasure import findings

    summary = pd.read_csv(out / "summary.csv")
    f1 = summary[summary.metric == "macro_f1"].set_index(["model", "task", "layer", "probe"])["mean"]
    pattern = r"(\S+) in (\S+) layer (\d+) \(its best layer, (\w+) Macro-F1 ([\d.]+)( [^)]*)?\)"
    texts = [*findings(out), (out / "report.md").read_text()]
    quoted = [m.groups() for text in texts for m in re.finditer(pattern, text)]
    assert quoted
    for task, model, layer, probe, score, where in quoted:
        if plan:
            assert (where or "").strip() == plan
        else:
            assert where is None and float(score) == round(f1[(model, task, int(layer), probe)], 2)
