"""Inference on the unit that varies, end to end: a set where each class has 2 speakers and the label is a
property of the speaker. No p-value below 0.05 and no interval narrower than the corrected t may appear in
any output (report.html, report.md, the console, the CSVs), and each statistic left out says why."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speechprobe.cli.output import print_best
from speechprobe.config import RunConfig
from speechprobe.pipeline import run


def speaker_tones(root: Path, per_speaker: int = 5, seed: int = 0) -> Path:
    """Two classes of tones, two speakers each (spk0, spk1: low; spk2, spk3: high): the label is constant
    within each speaker, and each speaker has a pitch offset of its own."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s, (label, f0) in enumerate((("low", 150.0), ("low", 170.0), ("high", 380.0), ("high", 420.0))):
        for i in range(per_speaker):
            t = np.arange(int(16000 * rng.uniform(0.5, 1.0))) / 16000
            y = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.02 * rng.standard_normal()) * t)
            name = f"spk{s}_{i}.wav"
            sf.write(root / name, (y + 0.02 * rng.standard_normal(len(t))).astype(np.float32), 16000)
            rows.append((name, label, f"spk{s}"))
    pd.DataFrame(rows, columns=["path", "label", "group"]).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


SMALL_P = re.compile(r"\bp = (0\.0[0-4]\d*|0\.00\d*|\d(\.\d+)?e-\d+)")  # any p-value below 0.05 in the text


@pytest.mark.slow
@pytest.mark.parametrize("cv", ["logo", "kfold"])
def test_two_speakers_per_class_print_no_small_p_and_no_narrow_interval(cv, tiny_whisper, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = RunConfig.of(
        models=[str(tiny_whisper)],
        tasks=[str(speaker_tones(tmp_path / "tones"))],
        out=out,
        folds=2,
        cv=cv,
        group_name="speaker",
        baselines=["mfcc"],
        probes=["knn"],
        window="trimmed",
        progress=False,
        permutations=200,
        bootstrap=200,
        embeddings=False,
        cue_probes=False,
        similarity=False,
        mdl=False,
    )
    run(cfg)
    print_best(out)
    console = capsys.readouterr().out
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    n_folds = 4 if cv == "logo" else 2

    # the fold plan and the unit, in words, everywhere
    plan = (
        "leave-one-speaker-out cross-validation (4 folds, one per speaker)"
        if cv == "logo"
        else "2-fold cross-validation grouped by speaker (4 speakers)"
    )
    info = manifest["cv"]["tones"]
    assert info["plan"] == plan and info["group_name"] == "speaker"
    assert info["unit"] == {
        "kind": "group",
        "noun": "speaker",
        "n_units": 4,
        "per_class": {"high": 2, "low": 2},
        "min_per_class": 2,
        "min_units_per_class": 5,
        "purity": 0.95,
        "enough": False,
    }
    assert plan in md and plan in console and "unit of inference: 4 speakers (high 2, low 2)" in console
    assert not re.search(r"over 5 folds|5 folds of cross-validation", md)  # the config default, not the plan

    # no p-value below 0.05, anywhere
    perm = pd.read_csv(out / "permutation.csv")
    assert len(perm) == 2 and perm["p_value"].isna().all() and perm["q_value"].isna().all()
    assert (perm["unit"] == "speaker").all() and (perm["n_units"] == 4).all()
    assert perm["note"].eq("2 speakers in the smallest class: too few for a permutation test (needs 5 per class)").all()
    # logo: 4 single-speaker folds, the speakers exchangeable: C(4, 2) = 6 labellings, all enumerated
    assert perm["exact"].all() and perm["min_p"].eq(1 / 6 if cv == "logo" else 1 / 4).all()
    chance = pd.read_csv(out / "chance.csv")
    assert chance["p_layer"].isna().all() and chance["p_holm"].isna().all() and chance["chance"].notna().all()
    table = pd.read_csv(out / "main_table.csv")
    assert table["p_value"].isna().all() and table["min_p"].eq(perm["min_p"].iloc[0]).all()
    for text in (md, page, console):
        assert not SMALL_P.search(text), SMALL_P.search(text)
    assert "is not tested against shuffled labels (2 speakers in the smallest class: too few for a permutation" in md
    assert f"the interval is the corrected t over {n_folds} folds" in md
    assert "no layer is tested against it (too few units)" in md

    # no interval narrower than the corrected t: bootstrap, fingerprint and paired-gap intervals are left out
    boot = pd.read_csv(out / "bootstrap.csv")
    assert boot[["ci_low", "ci_high", "p_best", "p_best_overall"]].isna().all().all()
    assert boot["note"].eq("2 speakers in the smallest class: too few for a bootstrap (needs 5 per class)").all()
    assert boot["over"].str.startswith("bootstrap over 4 speakers").all()
    assert table[["oof_ci_low", "oof_ci_high", "p_best"]].isna().all().all() and table["macro_f1_oof"].notna().all()
    finger = pd.read_csv(out / "fingerprints.csv")
    assert finger[["peak_depth_lo", "peak_depth_hi", "peak_share", "d90_depth_lo", "d90_depth_hi"]].isna().all().all()
    assert finger["note"].str.contains("too few for a fingerprint interval").all()
    # the findings table's rows: the out-of-fold score without an interval, and why
    assert "| – | – | 2 speakers in the smallest class: too few for a bootstrap (needs 5 per class) |" in md
    assert not re.search(r"score at this layer \d|in \d+ ?% of resamples", md + page + console)
    rises = finger[(finger["probe"] == "knn") & (finger["d90_layer"] >= 0)]
    if len(rises):  # a curve that never rises above chance has no depth to give an interval of
        assert "| 2 speakers in the smallest class: too few for a fingerprint interval (needs 5 per class) |" in md
    assert "| undetermined (looks " in md and "too few for a paired gap between layers" in md
    assert not re.search(r"curve is (rising|falling|peaked|dipped|flat)", md)
    assert "too few for a permutation test, a bootstrap interval or a paired gap" in console
    # the all-layers reference (learned layer weighting) gives no interval of its paired difference
    assert "learned weighting of all layers" in md and "undetermined (2 speakers in the smallest class: too few" in md
    assert "nan" not in md.split("## Layer curves")[0].lower()  # a score the plan could not give is named, not nan
    assert not re.search(r"difference [+-]\d\.\d\d \[", md)
    # the only intervals printed are the corrected t over the folds
    assert "corrected resampled t over" in md
