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
