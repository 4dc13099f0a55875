"""run_zeroshot end to end on a tiny Qwen2-Audio: rows, responses, manifest, cache and resume, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from speechprobe.errors import ConfigError
from speechprobe.pipeline import run_zeroshot_stage
from speechprobe.rundir import RESULT_COLUMNS, RunDir
from speechprobe.zeroshot import ZeroShotConfig, refresh_zeroshot_tables, run_zeroshot
from speechprobe.zeroshot import engines as engines_mod
from speechprobe.zeroshot.qwen2_audio import Qwen2AudioBackend

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

LIKELIHOOD_MODES = ("likelihood", "likelihood_bc", "likelihood_cc", "likelihood_pm", "likelihood_pmi", "likelihood_raw")
PROBES = {f"zeroshot:{m}:{p}" for m in ("generate", *LIKELIHOOD_MODES) for p in ("choose", "question")}


def _cfg(tmp_path, model, **kw) -> ZeroShotConfig:
    base = {
        "models": [str(model)],
        "tasks": ["spoken_word"],
        "out": tmp_path / "run",
        "n_per_class": 1,
        "prompts": ["choose", "question"],
        "batch_size": 4,
        "max_new_tokens": 4,
        "cache": tmp_path / "cache",
        "progress": False,
    }
    return ZeroShotConfig(**{**base, **kw})


@pytest.fixture
def encode_counter(monkeypatch):
    """Counts the clips each call of the Qwen2-Audio encoder sees."""
    calls: list[int] = []
    original = Qwen2AudioBackend.encode

    def counting(self, audios):
        calls.append(len(audios))
        return original(self, audios)

    monkeypatch.setattr(Qwen2AudioBackend, "encode", counting)
    return calls


def test_rows_responses_and_manifest(tmp_path, tiny_qwen, encode_counter):
    cfg = _cfg(tmp_path, tiny_qwen)
    rows = run_zeroshot(cfg)
    out = cfg.out
    # the audio is encoded once per clip, for 2 prompts x 2 modes x 8 labels; then the 4 content-free
    # inputs (silence, two noise levels, no audio) once, for both prompts
    assert encode_counter == [4, 4, 4]
    results = pd.read_csv(out / "results.csv", dtype=str, keep_default_na=False)
    assert list(results.columns) == ["model", "task", "layer", "probe", "fold", "metric", "value"]
    assert set(results["probe"]) == PROBES and set(results["layer"]) == {""} and set(results["fold"]) == {"0"}
    diagnostics = {"parse_rate", "top_share", "pred_entropy", "true_entropy", "collapsed", "chance_macro_f1"}
    for probe, rows_of in results.groupby("probe"):
        assert set(rows_of["metric"]) == {"macro_f1", "accuracy", *diagnostics}, probe
    lik = results[results["probe"].str.startswith("zeroshot:likelihood")]
    assert (lik.loc[lik["metric"] == "parse_rate", "value"].astype(float) == 1.0).all()  # always a label
    values = results["value"].astype(float)
    entropy = results["metric"].str.endswith("_entropy")
    assert values[~entropy].between(0, 1).all() and values[entropy].between(0, 3).all()  # 8 labels: <= 3 bits
    assert (values[results["metric"] == "true_entropy"] == 3.0).all()  # 8 balanced classes
    assert len(rows) == len(results)
    responses = pd.read_csv(out / "zeroshot" / tiny_qwen.name / "spoken_word.csv")
    assert len(responses) == 8 * 2 * 7 and responses["id"].nunique() == 8
    assert set(responses.loc[responses["mode"] == "generate", "parse_rule"].dropna()) <= {
        "exact",
        "normalised",
        "synonym",
        "mention",
        "empty",
        "ambiguous",
        "unparsed",
    }
    scores = json.loads(responses.loc[responses["mode"] == "likelihood", "scores"].iloc[0])
    assert list(scores) == ["yes", "no", "up", "down", "left", "right", "stop", "go"]
    manifest = json.loads((out / "manifest.json").read_text())["zeroshot"]
    settings = manifest["models"][tiny_qwen.name]["settings"]
    assert settings["chat_template"] is False and settings["batch_size"] == 4 and settings["system_prompt"] is None
    assert manifest["prompts"]["choose"]["text"] == "Choose one of: {labels}." and manifest["fold"] == 0
    info = manifest["tasks"]["spoken_word"]["by_model"][tiny_qwen.name]
    assert info["clips"] == 8 and info["answers_computed"] == 32 and info["clips_encoded"] == 8
    sens = pd.read_csv(out / "zeroshot_sensitivity.csv")
    assert list(sens["mode"]) == ["generate", *LIKELIHOOD_MODES, "all"]
    assert list(sens["n_prompts"]) == [2, 2, 2, 2, 2, 2, 2, 14] and (sens["min"] <= sens["max"]).all()
    assert info["content_free_inputs"] == ["silence", "noise-60dBFS", "noise-40dBFS", "no-audio"]
    assert info["native_heads"] == {} and info["native_skipped"] == {}  # Qwen2-Audio has no native head
    free = pd.read_csv(out / "zeroshot" / tiny_qwen.name / "content_free" / "spoken_word.csv")
    assert len(free) == 2 * 4 * 8 and np.allclose(free.groupby(["prompt_id", "input"])["p_label"].sum(), 1, atol=1e-5)
    assert manifest["tasks"]["spoken_word"]["verbalisers"]["yes"] == ["yes"]
    run_zeroshot_stage(cfg)  # the pipeline's zero-shot stage also refreshes summary.csv (analysis)
    summary = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
    assert set(summary.loc[summary["probe"].str.startswith("zeroshot:"), "layer"]) == {""}


def test_rerun_and_interrupted_run_resume_from_the_cache(tmp_path, tiny_qwen, encode_counter, monkeypatch):
    fresh = run_zeroshot(_cfg(tmp_path / "fresh", tiny_qwen))
    encode_counter.clear()
    calls = {"n": 0}
    original = engines_mod.greedy_generate

    def interrupted(*args, **kw):  # in the second batch (2 generate calls per batch: one per prompt)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kw)

    monkeypatch.setattr(engines_mod, "greedy_generate", interrupted)
    cfg = _cfg(tmp_path, tiny_qwen)
    with pytest.raises(KeyboardInterrupt):
        run_zeroshot(cfg)
    monkeypatch.setattr(engines_mod, "greedy_generate", original)
    assert not (cfg.out / "results.csv").exists()
    encode_counter.clear()
    resumed = run_zeroshot(cfg)
    info = json.loads((cfg.out / "manifest.json").read_text())["zeroshot"]["tasks"]["spoken_word"]["by_model"][
        tiny_qwen.name
    ]
    # the first batch (4 clips x 2 prompts x 2 modes) was stored whole; only the second is answered again,
    # then the content-free inputs, which the interrupted run never reached
    assert info["answers_from_cache"] == 16 and info["answers_computed"] == 16 and encode_counter == [4, 4]
    pd.testing.assert_frame_equal(resumed, fresh)
    encode_counter.clear()
    again = run_zeroshot(cfg)  # everything cached: nothing is encoded
    assert encode_counter == [] and again.equals(resumed)
    # a changed decoding setting is a different cache key (and, in the same run directory, a replaced run)
    run_zeroshot(_cfg(tmp_path, tiny_qwen, max_new_tokens=5, modes=["generate"]), existing="overwrite")
    assert sum(encode_counter) == 8


def test_probe_rows_are_kept_and_linked(tmp_path, tiny_qwen):
    cfg = _cfg(tmp_path, tiny_qwen, tasks=["spoken_word", "gender"], prompts=["choose"])
    cfg.out.mkdir(parents=True)
    model = tiny_qwen.name
    probe_rows = [
        (model, task, layer, "knn", fold, "macro_f1", 0.3 + 0.1 * layer + 0.01 * fold)
        for task in ("spoken_word", "gender")
        for layer in (0, 1, 2)
        for fold in (0, 1)
    ]
    pd.DataFrame(probe_rows, columns=["model", "task", "layer", "probe", "fold", "metric", "value"]).to_csv(
        cfg.out / "results.csv", index=False
    )
    (cfg.out / "manifest.json").write_text(json.dumps({"config": {"models": [model]}, "figures": []}))
    run_zeroshot(cfg, existing="resume")  # files of a run without run.json: adopted only when asked
    run_zeroshot(cfg)  # a rerun replaces its own rows, never duplicates them
    results = pd.read_csv(cfg.out / "results.csv", dtype=str, keep_default_na=False)
    assert len(results[results["probe"] == "knn"]) == 12
    # 2 tasks x 7 (mode, prompt) rows (generate and six likelihood modes) x 8 metrics (scores + diagnostics)
    assert len(results[results["probe"].str.startswith("zeroshot:")]) == 2 * 7 * 8
    pairs = pd.read_csv(cfg.out / "zeroshot_vs_probe.csv")
    assert sorted(pairs["task"]) == ["gender", "gender", "spoken_word", "spoken_word"]
    assert sorted(pairs["selection"]) == ["default", "default", "oracle", "oracle"]
    assert np.allclose(pairs["probe_f1"], 0.505) and (pairs["probe_layer"] == 2).all()
    assert (pairs.loc[pairs["selection"] == "default", "mode"] == "likelihood_bc").all()  # calibrated first
    diagnostics = pd.read_csv(cfg.out / "zeroshot_diagnostics.csv")
    assert len(diagnostics) == 2 * 7 and diagnostics["parse_rate"].between(0, 1).all()
    corr = pd.read_csv(cfg.out / "zeroshot_correlation.csv")
    assert set(corr["method"]) == {"spearman", "pearson"} and (corr["n_pairs"] <= 2).all()
    assert corr["r"].isna().all()  # fewer than 3 pairs: no correlation is claimed
    assert (cfg.out / "figures" / "zeroshot_correlation.png").stat().st_size > 1000
    manifest = json.loads((cfg.out / "manifest.json").read_text())
    assert manifest["config"] == {"models": [model]} and "figures/zeroshot_correlation.png" in manifest["figures"]
    assert manifest["zeroshot"]["figure"] == "figures/zeroshot_correlation.png"
    # probing again (speechprobe probe RUN) replaces only the probe rows; the comparison follows the new scores
    before = results[results["probe"].str.startswith("zeroshot:")]
    run_dir = RunDir(cfg.out)
    run_dir.replace_rows("probe", pd.DataFrame([(*r[:-1], r[-1] + 0.1) for r in probe_rows], columns=RESULT_COLUMNS))
    refresh_zeroshot_tables(run_dir)
    after = pd.read_csv(cfg.out / "results.csv", dtype=str, keep_default_na=False)
    assert (
        after[after["probe"].str.startswith("zeroshot:")].reset_index(drop=True).equals(before.reset_index(drop=True))
    )
    assert np.allclose(pd.read_csv(cfg.out / "zeroshot_vs_probe.csv")["probe_f1"], 0.605)


def test_config_for_speechprobe_run(tmp_path):
    from speechprobe.config import RunConfig

    run = RunConfig.of(
        models=["whisper-base", "mfcc"],
        tasks=["emotion"],
        out=tmp_path,
        seed=3,
        n_per_class=5,
        window="trimmed",
        progress=False,
        engine="ray",
        ray_address="auto",
        ray_actors=2,
    )
    cfg = ZeroShotConfig.from_run_config(run, prompts=["choose"], modes=["likelihood"], batch_size=2)
    assert (cfg.models, cfg.tasks, cfg.out, cfg.seed, cfg.n_per_class, cfg.window) == (
        ["whisper-base", "mfcc"],
        ["emotion"],
        tmp_path,
        3,
        5,
        "trimmed",
    )
    assert cfg.skip_unsupported and cfg.prompts == ["choose"] and cfg.modes == ["likelihood"] and cfg.batch_size == 2
    assert (cfg.engine, cfg.ray_address, cfg.ray_actors) == ("ray", "auto", 2)
    # the engine changes no number: it is recorded beside the config, not in it
    assert not {"engine", "ray_address", "ray_actors", "progress"} & set(cfg.to_json())
    for bad, message in (({"engine": "spark"}, "--engine 'spark'"), ({"ray_actors": 2}, "need --engine ray")):
        with pytest.raises(ConfigError, match=message):
            ZeroShotConfig(models=["whisper-base"], tasks=["emotion"], out=tmp_path, **bad).validate()


def test_empty_generation_is_a_parse_failure(tmp_path, tiny_qwen, monkeypatch):
    monkeypatch.setattr(engines_mod, "greedy_generate", lambda backend, enc, prompts, n: [""] * len(prompts))
    run_zeroshot(_cfg(tmp_path, tiny_qwen, modes=["generate"], prompts=["choose"]))
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    got = dict(zip(results["metric"], results["value"]))
    assert got == {
        "accuracy": 0.0,
        "macro_f1": 0.0,
        "parse_rate": 0.0,
        "top_share": 0.0,
        "pred_entropy": 0.0,
        "true_entropy": 3.0,
        "collapsed": 0.0,
        "chance_macro_f1": 0.125,
    }
    responses = pd.read_csv(tmp_path / "run" / "zeroshot" / tiny_qwen.name / "spoken_word.csv")
    assert set(responses["parse_rule"]) == {"empty"} and responses["prediction"].isna().all()


def test_models_without_a_decoder_are_refused(tmp_path, tiny_qwen):
    for name in ("mfcc", "wav2vec2-base"):
        with pytest.raises(ConfigError) as e:
            run_zeroshot(_cfg(tmp_path, name))
        msg = str(e.value)
        assert "no text decoder" in msg and "whisper-base" in msg and "qwen2-audio-7b-instruct" in msg
        assert "seamless-m4t-v2-large" in msg
    w2v = tmp_path / "my-hubert"
    w2v.mkdir()
    (w2v / "config.json").write_text(json.dumps({"model_type": "hubert"}))
    with pytest.raises(ConfigError, match="hubert checkpoint.*no text decoder"):
        run_zeroshot(_cfg(tmp_path, w2v))
    assert not (tmp_path / "run" / "results.csv").exists()
    # inside `speechprobe run`, encoder-only models are skipped (and recorded), the others answer
    cfg = _cfg(tmp_path, tiny_qwen, skip_unsupported=True, modes=["likelihood"], prompts=["choose"])
    cfg.models = ["mfcc", str(tiny_qwen)]
    run_zeroshot(cfg)
    manifest = json.loads((cfg.out / "manifest.json").read_text())["zeroshot"]
    assert "no text decoder" in manifest["skipped_models"]["mfcc"] and list(manifest["models"]) == [tiny_qwen.name]


def test_bad_prompt_input_fails_before_any_work(tmp_path, tiny_qwen):
    bare = tmp_path / "bare.txt"
    bare.write_text("What do you hear?")
    with pytest.raises(ConfigError, match="no \\{labels\\} slot"):
        run_zeroshot(_cfg(tmp_path, tiny_qwen, prompts=[f"file:{bare}"]))
    with pytest.raises(ConfigError, match="--mode"):
        run_zeroshot(_cfg(tmp_path, tiny_qwen, modes=["likelihood", "beam"]))
    # fine for likelihood, and only the modes asked for are written
    run_zeroshot(_cfg(tmp_path, tiny_qwen, prompts=[f"file:{bare}"], modes=["likelihood", "likelihood_bc"]))
    probes = set(pd.read_csv(tmp_path / "run" / "results.csv")["probe"])
    assert probes == {"zeroshot:likelihood:file-bare", "zeroshot:likelihood_bc:file-bare"}


def test_prior_matching_reaches_a_given_target_prior(tmp_path, tiny_qwen):
    labels = ["yes", "no", "up", "down", "left", "right", "stop", "go"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"yes": 1.0}))
    with pytest.raises(ConfigError, match="--target-prior .*bad.json.*every label"):
        run_zeroshot(_cfg(tmp_path, tiny_qwen, modes=["likelihood_pm"], target_prior={"spoken_word": str(bad)}))
    good = tmp_path / "target.json"
    good.write_text(json.dumps({x: 3.0 if x == "yes" else 1.0 for x in labels}))
    cfg = _cfg(tmp_path, tiny_qwen, modes=["likelihood_pm"], target_prior={"spoken_word": str(good)})
    run_zeroshot(cfg)
    responses = pd.read_csv(cfg.out / "zeroshot" / tiny_qwen.name / "spoken_word.csv")
    for _, rows in responses.groupby("prompt_id"):  # the mean matched label distribution is the target
        scores = np.array([list(json.loads(s).values()) for s in rows["scores"]])
        np.testing.assert_allclose(np.exp(scores).mean(0), [0.3] + [0.1] * 7, atol=1e-5)
    manifest = json.loads((cfg.out / "manifest.json").read_text())["zeroshot"]
    assert manifest["tasks"]["spoken_word"]["by_model"][tiny_qwen.name]["target_prior"]["yes"] == 0.3


def test_all_prompts_include_the_tasks_instruction(tmp_path, tiny_qwen):
    """A task without an instruction column is asked its own instruction, in Dynamic-SUPERB's form."""
    run_zeroshot(_cfg(tmp_path, tiny_qwen, prompts=["all"], modes=["likelihood"]))
    responses = pd.read_csv(tmp_path / "run" / "zeroshot" / tiny_qwen.name / "spoken_word.csv")
    assert sorted(set(responses["prompt_id"])) == ["choose", "instruction", "question"]
    asked = set(responses.loc[responses["prompt_id"] == "instruction", "prompt"])
    assert asked == {"Which word is spoken? The answer could be yes, no, up, down, left, right, stop or go."}
    assert set(responses["mode"]) == {"likelihood"}


def test_dataset_instruction_prompt_per_clip(tmp_path, tiny_qwen, monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    rng = np.random.default_rng(0)
    rows = []
    for k, label in enumerate(("0.4m", "2.0m", "4.0m")):
        for i in range(2):
            y = (0.05 * rng.standard_normal(8000)).astype(np.float32)
            rows.append(
                {
                    "file": f"3D_SPK_{i:05d}_{k:03d}_Device02_Distance{k:02d}.wav",
                    "label": label,
                    "audio": {"array": y.tolist(), "sampling_rate": 16000},
                    "instruction": f"How far is the speaker ({i})? The answer could be 0.4m, 2.0m, or 4.0m.",
                }
            )
    folder = tmp_path / "ds-distance"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    cfg = _cfg(tmp_path, tiny_qwen, tasks=[f"ds-distance={folder}"], prompts=["all"], modes=["generate"])
    run_zeroshot(cfg)
    responses = pd.read_csv(cfg.out / "zeroshot" / tiny_qwen.name / "ds-distance.csv")
    instr = responses[responses["prompt_id"] == "instruction"]
    assert len(instr) == 6 and instr["prompt"].str.startswith("How far is the speaker (").all()
    assert instr["prompt"].nunique() == 2  # each clip's own instruction
    assert set(responses["prompt_id"]) == {"instruction", "choose", "question"}
