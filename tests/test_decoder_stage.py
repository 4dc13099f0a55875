"""The derived names of decoder states probed as models, read from the zero-shot stage's manifest records."""

from __future__ import annotations

import pytest

from speechprobe.decoder_stage import decoder_models
from speechprobe.errors import ConfigError


def _manifest(models=("qwen",)):
    dec = {"prompt_id": "choose", "store": "/c/features", "rules": {"last": "", "audio_mean": ""}}
    by_task = {
        task: {"by_model": {"qwen": {"decoder": dec | {"spaces": {"last": f"{task}L", "audio_mean": f"{task}A"}}}}}
        for task in ("emotion", "gender")
    }
    by_task["accent"] = {"by_model": {"qwen": {}}}  # asked zero-shot without the states
    return {"config": {"models": list(models), "baselines": ["mfcc"]}, "zeroshot": {"tasks": by_task}}


def test_one_model_per_prompt_and_rule_with_a_space_per_task():
    found = decoder_models(_manifest())
    assert sorted(found) == ["qwen:decoder@choose", "qwen:decoder@choose/audio_mean"]
    assert found["qwen:decoder@choose"]["spaces"] == {"emotion": "emotionL", "gender": "genderL"}
    assert found["qwen:decoder@choose/audio_mean"]["spaces"] == {"emotion": "emotionA", "gender": "genderA"}
    assert found["qwen:decoder@choose/audio_mean"]["decoder"] == {
        "model": "qwen", "prompt_id": "choose", "rule": "audio_mean"
    }  # fmt: skip
    assert decoder_models({"config": {"models": ["qwen"]}}) == {}  # no decoder states: nothing derived


def test_a_model_named_like_decoder_states_is_refused():
    with pytest.raises(ConfigError, match=r"--models x:decoder@choose: ':decoder@' marks decoder states"):
        decoder_models(_manifest(("qwen", "x:decoder@choose")))


def test_a_probe_stage_that_drops_decoder_states_says_which_and_how_to_get_them_back(tmp_path, caplog):
    from speechprobe.rundir import RunDir
    from speechprobe.zeroshot.decoder_states import warn_dropped

    run_dir = RunDir(tmp_path)
    names = ["w", "w:decoder@choose", "w:decoder@choose/audio_mean"]
    run_dir.update_manifest({"models": {name: {"num_layers": 2} for name in names}})
    with caplog.at_level("WARNING", logger="speechprobe"):
        assert warn_dropped(run_dir, {"w"}) == names[1:]
    (text,) = caplog.messages
    assert "decoder states w:decoder@choose, w:decoder@choose/audio_mean:" in text
    assert f"speechprobe zeroshot --out {tmp_path} --decoder-states" in text
    assert warn_dropped(run_dir, set(names)) == []  # every one kept: nothing to say
    assert warn_dropped(RunDir(tmp_path / "new"), {"w"}) == [] and len(caplog.messages) == 1  # no manifest yet
