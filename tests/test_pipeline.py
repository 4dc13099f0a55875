"""End to end on a tiny random Whisper and the MFCC baseline over a small tone dataset."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from gpu import cuda_only
from speechprobe.config import RunConfig
from speechprobe.errors import ConfigError
from speechprobe.pipeline import load_extracted, probe_and_report, run, run_extract


def _cfg(tones, out, **kw):
    base = dict(
        models=[str(kw.pop("model"))],
        tasks=[str(tones)],
        out=out,
        folds=4,
        baselines=["mfcc"],
        window="trimmed",
        probes=["knn", "linear"],
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    return RunConfig.of(**{**base, **kw})


@pytest.mark.slow
def test_run_writes_the_run_directory(tones, tiny_whisper, tmp_path):
    results = run(_cfg(tones, tmp_path / "run", model=tiny_whisper, permutations=20, embeddings=True, report=True))
    out = tmp_path / "run"
    html = (out / "report.html").read_text()
    assert "<img" in html and "tones" in html and (out / "main_table.tex").is_file()
    perm = pd.read_csv(out / "permutation.csv")
    assert set(perm["model"]) == {"tiny-whisper0", "mfcc"} and (perm["p_value"] <= 1).all()
    assert perm.loc[perm.model == "mfcc", "p_value"].iloc[0] < 0.1  # pitch is separable: 20 permutations
    assert (out / "figures" / "tsne_mfcc_tones.png").is_file()
    assert list(results.columns) == ["model", "task", "layer", "probe", "fold", "metric", "value"]
    assert set(results["model"]) == {"tiny-whisper0", "mfcc"}
    assert set(results["metric"]) == {"macro_f1", "accuracy", "macro_f1_oof", "nmi", "ami"}
    assert sorted(results.loc[results.model == "tiny-whisper0", "layer"].unique()) == [0, 1, 2]
    summary = pd.read_csv(out / "summary.csv")
    assert {"mean", "std", "n", "ci95"} <= set(summary.columns)
    assert (summary.loc[summary.metric != "macro_f1_oof", "n"] == 4).all()
    assert (summary.loc[summary.metric == "macro_f1_oof", "n"] == 1).all()  # one out-of-fold score per repeat
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["versions"]["torch"]
    assert manifest["tasks"]["tones"]["grouped_folds"] is True
    assert manifest["models"]["tiny-whisper0"]["revision"].startswith("sha256:")
    assert (out / "figures" / "layers_tones.png").stat().st_size > 1000
    # Pitch carries the label: the MFCC baseline separates it far above chance (1/3).
    mfcc = results[(results.model == "mfcc") & (results.metric == "macro_f1") & (results.probe == "linear")]
    assert mfcc["value"].mean() > 0.8


@pytest.mark.slow
def test_rerun_is_identical_and_extracts_nothing(tones, tiny_whisper, tmp_path):
    run(_cfg(tones, tmp_path / "a", model=tiny_whisper))
    run(_cfg(tones, tmp_path / "b", model=tiny_whisper))
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()
    extraction = json.loads((tmp_path / "b" / "manifest.json").read_text())["extraction"]
    assert all(v["computed"] == 0 and v["reused"] == 24 for v in extraction.values())
    assert {v["max_batch_seconds"] for v in extraction.values()} == {120.0}  # the CPU default, recorded


def test_batch_budget_defaults_by_device(tmp_path):
    def budget(**kw):
        return RunConfig.of(models=["whisper-base"], tasks=["accent"], out=tmp_path, **kw).batch_seconds

    assert budget() == 120.0 and budget(device="cuda") == budget(device="cuda:1") == 960.0
    assert budget(device="cuda", max_batch_seconds=30.0) == 30.0
    with pytest.raises(ConfigError, match="--max-batch-seconds must be positive"):
        RunConfig.of(models=["whisper-base"], tasks=["accent"], out=tmp_path, max_batch_seconds=-1.0).validate()


@pytest.mark.slow
def test_shuffled_labels_fall_to_chance(tones, tiny_whisper, tmp_path):
    rows = list(csv.reader(open(tones)))
    labels = [r[1] for r in rows[1:]]
    rng = np.random.default_rng(1)
    rng.shuffle(labels)
    with open(tones, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        w.writerows([[r[0], lab, r[2]] for r, lab in zip(rows[1:], labels)])
    results = run(_cfg(tones, tmp_path / "run", model=tiny_whisper))
    f1 = results[(results.metric == "macro_f1")].groupby(["model", "layer", "probe"])["value"].mean()
    assert f1.max() < 0.6


def test_extract_then_probe_stage(tones, tiny_whisper, tmp_path):
    cfg = _cfg(tones, tmp_path / "run", model=tiny_whisper)
    run_extract(cfg)
    cfg2, clips, state = load_extracted(tmp_path / "run")
    assert cfg2.models == cfg.models and len(clips["tones"]) == 24
    results = probe_and_report(cfg2, clips, state)
    # layers x (probes x (folds x 2 metrics + 1 out-of-fold) + folds x (nmi, ami))
    assert len(results) == (3 + 1) * (2 * (4 * 2 + 1) + 4 * 2)


def test_class_smaller_than_folds_is_a_one_line_error(tones, tiny_whisper, tmp_path):
    with pytest.raises(ConfigError, match="fewer than --folds 10; lower --folds to 8"):
        run(_cfg(tones, tmp_path / "run", model=tiny_whisper, folds=10))


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_cpu_is_accepted_and_warns_without_native_support(native, monkeypatch, caplog, tmp_path):
    from speechprobe.models import hub

    monkeypatch.setattr(hub, "cpu_bf16_native", lambda: native)
    cfg = RunConfig.of(models=["whisper-base"], tasks=["accent"], out=tmp_path, device="cpu", dtype="bf16")
    with caplog.at_level("WARNING", logger="speechprobe"):
        cfg.validate()
    assert ("slower than float32" in caplog.text) is (not native)
    with pytest.raises(ConfigError, match="fp16 needs --device cuda"):
        RunConfig.of(models=["whisper-base"], tasks=["accent"], out=tmp_path, device="cpu", dtype="fp16").validate()


def test_ungrouped_manifest_warns_about_leakage(tones, tmp_path):
    table = pd.read_csv(tones).drop(columns="group")
    table.to_csv(tones, index=False)
    run(RunConfig.of(models=[], tasks=[str(tones)], out=tmp_path / "run", folds=3, baselines=["mfcc"], progress=False))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["tasks"]["tones"]["grouped_folds"] is False
    assert any("leakage" in w for w in manifest["warnings"])


def test_notebook_api(tones, tmp_path):
    import speechprobe

    results = speechprobe.run(
        [],
        [str(tones)],
        tmp_path / "nb",
        baselines=["mfcc"],
        folds=3,
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    assert set(results["model"]) == {"mfcc"} and isinstance(
        speechprobe.RunConfig.of(models=[], tasks=[], out=tmp_path), object
    )


def test_task_left_with_one_class_is_reported_and_others_go_on(tones, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tones.parent, other)
    table = pd.read_csv(other / "manifest.csv")
    for p in table.loc[table.label != "low", "path"]:
        (other / p).write_bytes(b"")  # every clip of two classes becomes unreadable
    results = run(
        RunConfig.of(
            models=[],
            tasks=[str(tones), str(other / "manifest.csv")],
            out=tmp_path / "run",
            folds=3,
            baselines=["mfcc"],
            progress=False,
            permutations=0,
            embeddings=False,
            report=True,
        )
    )
    assert set(results["task"]) == {"tones"} and len(results) > 0  # tasks named after their folders
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert any("other: only 1 class" in w for w in manifest["warnings"])
    assert (tmp_path / "run" / "report.html").is_file()


@cuda_only
def test_cuda_run_matches_the_cpu_run(tones, tiny_whisper, tmp_path):
    runs = {}
    for device, dtype in (("cpu", None), ("cuda", None), ("cuda", "bf16")):
        name = f"{device}-{dtype}"
        cfg = _cfg(
            tones,
            tmp_path / name,
            model=tiny_whisper,
            probes=["knn", "mlp"],
            cache=tmp_path / f"cache-{name}",
            device=device,
            dtype=dtype,
        )
        runs[name] = run(cfg).set_index(["model", "layer", "probe", "fold", "metric"])["value"]
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        assert all(v["computed"] == 24 for v in manifest["extraction"].values())  # its own cache: really extracted
    cpu = runs["cpu-None"]
    for name in ("cuda-None", "cuda-bf16"):
        # MFCC features do not depend on the device, and the probes' GPU kernels give scikit-learn's rows
        assert runs[name].loc["mfcc"].equals(cpu.loc["mfcc"]), name
        model = runs[name].loc["tiny-whisper0"].groupby(["layer", "probe", "metric"]).mean()
        reference = cpu.loc["tiny-whisper0"].groupby(["layer", "probe", "metric"]).mean()
        assert (model - reference).abs().max() <= 0.1, (name, (model - reference).abs().max())


@pytest.mark.slow
def test_layer_analyses_with_a_random_init_twin(tones, tiny_whisper, tmp_path):
    out = tmp_path / "run"
    run(_cfg(tones, out, model=tiny_whisper, models=[str(tiny_whisper), f"{tiny_whisper}+random"], report=True))
    models = set(json.loads((out / "manifest.json").read_text())["models"])
    assert models == {"tiny-whisper0", "tiny-whisper0+random", "mfcc"}
    mdl = pd.read_csv(out / "mdl.csv")
    assert set(mdl["model"]) == models and (mdl["n_clips"] == 24).all()
    assert mdl.loc[mdl.model == "mfcc", "compression"].iloc[0] > 1.3  # pitch carries the label
    sim = pd.read_csv(out / "similarity.csv")
    assert len(sim) == 2 * (3 + 3 + 1) ** 2
    fp = pd.read_csv(out / "fingerprints.csv")
    assert set(fp["model"]) == {"tiny-whisper0", "tiny-whisper0+random"}
    md = (out / "report.md").read_text()
    assert "![Figure 1](figures/headline.png)" in md and "![Figure 2](figures/fingerprints.png)" in md  # summary first
    assert "figures/similarity_layers_tiny-whisper0.png" in md
    assert "figures/mdl_tones.png" in md and "Random-init controls" in md


def test_random_twin_of_a_baseline_is_refused(tones, tmp_path):
    cfg = _cfg(tones, tmp_path / "run", model="mfcc+random", baselines=[])
    with pytest.raises(ConfigError, match="fixed recipe with no weights to randomise"):
        run(cfg)
