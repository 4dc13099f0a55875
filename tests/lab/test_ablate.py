"""The ablation's seed-level statistics and its report, on scores whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speechprobe.lab.ablate import AblateSettings
from speechprobe.lab.ablate_report import cue_sentences, write_report
from speechprobe.lab.config import TrainSettings
from speechprobe.lab.seeds import cue_peaks, findings, paired_table, seed_scores, t_interval

MODELS = {f"{o}-s{s}": (o, s) for o in ("masked", "random") for s in range(3)}
BASE = np.array([0.2, 0.5, 0.8])  # seeds differ a lot; the objective's effect within a seed is small


def summary() -> pd.DataFrame:
    """masked - random per seed: layer 0 about 0, layer 1 +0.10 +- 0.02 (random's layer 1 equals its layer 0)."""
    effect = {0: np.array([-0.02, 0.03, 0.0]), 1: np.array([0.10, 0.12, 0.08])}
    rows = []
    for model, (obj, seed) in MODELS.items():
        for layer in (0, 1):
            score = BASE[seed] + (effect[layer][seed] if obj == "masked" else 0.0)
            rows.append(
                {"model": model, "task": "gender", "layer": layer, "probe": "knn", "metric": "macro_f1", "mean": score}
            )
    rows.append({"model": "masked-s0", "task": "gender", "layer": 0, "probe": "mlp", "metric": "macro_f1", "mean": 0.0})
    return pd.DataFrame(rows)


def test_t_interval_over_seeds():
    mean, low, high, n = t_interval(np.array([0.5, 0.6, 0.7]))
    half = 4.302653 * 0.1 / np.sqrt(3)
    assert n == 3 and mean == pytest.approx(0.6) and (low, high) == pytest.approx((0.6 - half, 0.6 + half), abs=1e-6)
    assert np.isnan(t_interval(np.array([0.5]))[1])


def test_paired_differences_use_the_seed_as_unit_and_findings_follow_the_intervals():
    scores = seed_scores(summary(), MODELS, "knn")
    assert len(scores) == 6 * 2 + 6  # every (model, layer) of the knn probe, plus each seed's best layer
    paired = paired_table(scores, [("masked", "random")]).set_index("layer")
    assert paired.loc["1", "diff"] == pytest.approx(0.10)
    assert paired.loc["1", "low"] > 0  # paired by seed: the large seed-to-seed spread cancels
    assert paired.loc["0", "low"] < 0 < paired.loc["0", "high"]
    assert paired.loc["best", "diff"] == pytest.approx(np.mean([0.10, 0.12, 0.08]))
    # Bonferroni over 2 layers: t(0.9875, 2) = 6.205
    assert paired.loc["1", "low_bonferroni"] == pytest.approx(0.10 - 6.205 * 0.02 / np.sqrt(3), abs=1e-3)
    (sentence,) = findings(paired.reset_index(), {"masked": "masked", "random": "random"})
    assert "masked beats random at its best layer (+0.100" in sentence and "by layer 1" in sentence
    flat = paired_table(
        seed_scores(summary().assign(mean=lambda f: f["mean"] * 0 + BASE[0]), MODELS, "knn"), [("masked", "random")]
    )
    assert "no interval" not in findings(flat, {"masked": "m", "random": "r"})[0]


def cues() -> pd.DataFrame:
    """cues.csv rows: F0 R² peaks at layer 1 for every masked seed and at layer 0 for every random one."""
    rows = []
    for model, (obj, seed) in MODELS.items():
        peak = 1 if obj == "masked" else 0
        for layer in (0, 1):
            for fold in (0, 1):
                value = 0.5 if layer == peak else 0.1 + 0.01 * seed
                rows.append(
                    {
                        "task": "gender",
                        "model": model,
                        "target": "f0_mean",
                        "layer": layer,
                        "probe": "ridge",
                        "fold": fold,
                        "metric": "r2",
                        "value": value,
                    }
                )
    return pd.DataFrame(rows)


def test_cue_peaks_average_each_seeds_peak_layer():
    peaks = cue_peaks(cues(), MODELS, ("f0_mean",)).set_index("objective")
    assert peaks.loc["masked", "peak_layer"] == 1 and peaks.loc["random", "peak_layer"] == 0
    assert peaks.loc["masked", "r2"] == pytest.approx(0.5) and peaks.loc["masked", "seeds"] == 3
    frame = cues()
    frame.loc[frame["model"].str.startswith("masked"), "value"] -= 0.6  # masked: no layer above R² 0
    (sentence,) = cue_sentences(cue_peaks(frame, MODELS, ("f0_mean",)))
    assert sentence == (
        "Cue curve of f0_mean peaks (mean over seeds, t interval): masked: no layer predicts it (peak R² -0.10); "
        "random at layer 0.0 [0.0, 0.0] (R² 0.50)."
    )


def test_report_writes_tables_figures_and_the_supported_findings(tmp_path: Path):
    out = tmp_path / "ablation"
    (out / "run").mkdir(parents=True)
    summary().to_csv(out / "run" / "summary.csv", index=False)
    cues().to_csv(out / "run" / "cues.csv", index=False)
    for model, (obj, _) in MODELS.items():
        folder = out / "models" / model
        folder.mkdir(parents=True)
        steps = np.arange(1, 21)
        loss = 5 - 0.1 * steps if obj == "masked" else np.array([])
        pd.DataFrame({"step": steps[: len(loss)], "loss": loss}).to_csv(folder / "pretext_loss.csv", index=False)
    s = AblateSettings(
        out=out, objectives=["masked", "random"], seeds=3, tasks=["gender"], train=TrainSettings(steps=20)
    )
    report = write_report(s, MODELS)
    text = (out / "report.md").read_text()
    assert report.is_file() and "masked prediction (HuBERT) beats the random control at its best layer" in text
    assert "pretext loss 4.850 over the first tenth of 20 steps, 3.050 over the last (fell in 3 of 3 seeds)" in text
    assert "Every interval here is over the 3 pre-training seeds, not over folds" in text
    assert "2 degree(s) of freedom" in text
    assert "Cue curve of f0_mean peaks (mean over seeds, t interval): masked at layer 1.0 [1.0, 1.0]" in text
    assert "random at layer 0.0 [0.0, 0.0]" in text
    assert (out / "figures" / "ablate_gender.png").is_file() and (out / "figures" / "pretext_loss.png").is_file()
    assert len(pd.read_csv(out / "ablate_paired.csv")) == 3
