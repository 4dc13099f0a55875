"""The pipeline's cross-validation options: groups per class checked before extraction, --ungrouped,
--cv logo, --repeats, probe settings, and what they leave in the run directory."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from speechprobe.clip_checks import check_folds
from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError
from speechprobe.pipeline import run


def _cfg(tones, out, **kw):
    base = dict(
        models=[],
        tasks=[str(tones)],
        out=out,
        folds=4,
        baselines=["mfcc"],
        probes=["knn", "linear"],
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
        bootstrap=200,
    )
    return RunConfig.of(**{**base, **kw})


def test_too_few_groups_per_class_stop_before_extraction(tones, tmp_path):
    # 4 speakers, each reading every class: 4 groups per class, 5 folds
    with pytest.raises(ConfigError) as info:
        run(_cfg(tones, tmp_path / "run", folds=5))
    message = str(info.value)
    assert message == (
        "task tones: 3 class(es) have fewer groups than --folds 5 needs (5): 'high' 4, 'low' 4, "
        "'mid' 4; use --folds 4, --cv logo (leave one group out) or --ungrouped (folds ignore the groups; "
        "speaker leakage may inflate scores)"
    )
    assert not (tmp_path / "run" / "state.json").exists()  # nothing was extracted


def test_group_check_names_classes_and_fixes(tmp_path):
    cfg = RunConfig.of(models=[], tasks=["x"], out=tmp_path, folds=3)
    labels = ["a"] * 6 + ["b"] * 6
    groups = ["a1", "a2", "a3"] * 2 + ["b1"] * 6
    with pytest.raises(ConfigError, match=r"'b' 1; use --ungrouped \(folds ignore"):
        check_folds("t", labels, groups, cfg)
    cfg.cv.scheme = "logo"
    with pytest.raises(ConfigError, match=r"than --cv logo needs \(2\): 'b' 1; use --ungrouped"):
        check_folds("t", labels, groups, cfg)
    check_folds("t", labels, ["a1", "a2", "a3"] * 2 + ["b1", "b2"] * 3, cfg)  # two groups each: fine
    check_folds("t", labels, None, cfg)


@pytest.mark.slow
def test_ungrouped_and_logo_and_repeats_end_to_end(tones, tmp_path):
    ungrouped = run(_cfg(tones, tmp_path / "u", folds=5, ungrouped=True))
    manifest = json.loads((tmp_path / "u" / "manifest.json").read_text())
    assert manifest["tasks"]["tones"]["grouped_folds"] is False
    assert any("--ungrouped" in w and "leakage" in w for w in manifest["warnings"])
    assert manifest["cv"]["tones"]["scheme"] == "stratified-kfold" and len(ungrouped) > 0

    logo = run(_cfg(tones, tmp_path / "l", cv="logo"))
    cv = json.loads((tmp_path / "l" / "manifest.json").read_text())["cv"]["tones"]
    assert cv["scheme"] == "leave-one-group-out" and cv["n_folds_total"] == 4 and cv["groups_per_class"]["low"] == 4
    assert sorted(logo.loc[logo.metric == "macro_f1", "fold"].unique()) == [0, 1, 2, 3]

    rep = run(_cfg(tones, tmp_path / "r", folds=3, repeats=2, knn_k=3, linear_c=0.5))
    assert sorted(rep.loc[rep.metric == "macro_f1", "fold"].unique()) == list(range(6))
    assert sorted(rep.loc[rep.metric == "macro_f1_oof", "fold"].unique()) == [0, 1]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    cv = manifest["cv"]["tones"]
    assert cv["repeats"] == 2 and len(cv["folds"]) == 6 and cv["test_train_ratio"] == pytest.approx(8 / 16)
    assert all(f["missing_test"] == [] and f["missing_train"] == [] for f in cv["folds"])
    settings = manifest["probe_settings"]["probes"]
    assert settings["knn"]["classifier"]["n_neighbors"] == 3 and settings["linear"]["classifier"]["C"] == 0.5
    assert manifest["config"]["repeats"] == 2 and manifest["bootstrap"]["n_boot"] == 200
    boot = pd.read_csv(tmp_path / "r" / "bootstrap.csv")
    assert set(boot["model"]) == {"mfcc"} and (boot["unit"] == "group*").all()
    # 4 speakers, each reading every class: too few to resample, so no interval and no best-layer shares
    assert boot["note"].eq("4 groups in the smallest class: too few for a bootstrap (needs 5 per class)").all()
    assert boot["p_best"].isna().all() and boot["ci_low"].isna().all() and boot["observed"].notna().all()
    summary = pd.read_csv(tmp_path / "r" / "summary.csv")
    row = summary[(summary.metric == "macro_f1") & (summary.probe == "linear")].iloc[0]
    values = rep[(rep.metric == "macro_f1") & (rep.probe == "linear")]["value"].to_numpy()
    # 24 clips, 3 folds: 8 test, 16 train; 6 fold scores (2 repeats)
    expected = 2.570581836614739 * np.sqrt((1 / 6 + 0.5) * np.var(values, ddof=1))
    assert row["n"] == 6 and row["ci95"] == pytest.approx(expected)
    assert (tmp_path / "r" / "predictions" / "mfcc__tones.npz").is_file()


def test_probe_settings_and_cv_options_are_validated(tmp_path):
    def check(**kw):
        RunConfig.of(models=["whisper-base"], tasks=["accent"], out=tmp_path, **kw).validate()

    for kw, message in (
        ({"repeats": 0}, "--repeats 0"),
        ({"cv": "loo"}, "--cv 'loo'"),
        ({"cv": "logo", "repeats": 2}, "single partition"),
        ({"repeats": 2, "cue_repeats": 3}, "--cue-repeats 3: use 1 to --repeats \\(2\\)"),
        ({"cue_repeats": 0}, "--cue-repeats 0"),
        ({"cv": "logo", "ungrouped": True}, "needs the groups"),
        ({"bootstrap": -1}, "--bootstrap"),
        ({"knn_k": 0}, "--knn-k 0"),
        ({"mlp_solver": "rmsprop"}, "--mlp-solver 'rmsprop'"),
        ({"mlp_early_stopping_min_train": -1}, "--mlp-early-stopping-min-train -1"),
        ({"linear_c": 0.0}, "--linear-c 0.0"),
    ):
        with pytest.raises(ConfigError, match=message):
            check(**kw)


@pytest.mark.slow
def test_report_shows_coverage_bootstrap_and_shape_claims(tones, tiny_whisper, tmp_path):
    run(_cfg(tones, tmp_path / "run", report=True, models=[str(tiny_whisper)], window="trimmed"))
    md = (tmp_path / "run" / "report.md").read_text()
    assert "### Cross-validation and class coverage" in md and "| tones | stratified-group-kfold | 4 | 1 | 4 |" in md
    assert "### Best-layer uncertainty" in md
    # the findings table's row says why its out-of-fold score has no interval
    assert "| – | – | 4 groups in the smallest class: too few for a bootstrap" in md
    # the findings table's shape cell: the claim with the interval of its defining difference
    assert re.search(r"\| (undetermined \(looks|rising \(last|falling \(last|peaked \(best|dipped \(first)", md)
    table = pd.read_csv(tmp_path / "run" / "main_table.csv")
    assert {"macro_f1_oof", "oof_ci_low", "oof_ci_high", "p_best", "shape"} <= set(table.columns)


def test_selection_test_rescores_the_runs_own_folds_and_probe(tones, tmp_path):
    # repeated folds and a non-default k: the permutation test's observed score is results.csv's
    run(_cfg(tones, tmp_path / "run", folds=3, repeats=2, knn_k=3, permutations=19, probes=["knn"]))
    perm = pd.read_csv(tmp_path / "run" / "permutation.csv")
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    mean = summary[(summary.metric == "macro_f1") & (summary.probe == "knn")]["mean"].max()
    assert perm["observed"].iloc[0] == pytest.approx(mean, abs=1e-12)


@pytest.mark.slow
def test_cli_extract_then_probe_with_cv_options(tones, tmp_path):
    import subprocess
    import sys

    def cli(*args):
        cmd = [sys.executable, "-m", "speechprobe.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    out = str(tmp_path / "run")
    common = ["--no-progress"]
    r = cli("extract", "--tasks", str(tones), "--baselines-only", "--baselines", "mfcc", "--out", out, *common)
    assert r.returncode == 2 and "--folds 5 needs (5): 'high' 4" in r.stderr  # checked before extracting
    r = cli(
        "extract",
        "--tasks",
        str(tones),
        "--baselines-only",
        "--baselines",
        "mfcc",
        "--out",
        out,
        "--folds",
        "3",
        *common,
    )
    assert r.returncode == 0, r.stderr
    r = cli("probe", out, "--folds", "3", "--repeats", "2", "--knn-k", "3", "--bootstrap", "50", "--probes", "knn")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["repeats"] == 2 and manifest["config"]["knn_k"] == 3
    assert manifest["probe_settings"]["probes"]["knn"]["classifier"]["n_neighbors"] == 3
    assert "best in" in r.stdout and "corrected resampled t" in r.stdout
    r = cli("probe", out, "--cv", "loo")
    assert r.returncode == 2 and "--cv 'loo'" in r.stderr
