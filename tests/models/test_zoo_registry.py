"""The model zoo's registry entries: the study's short names, families of local dirs and hub ids."""

import json

import pytest

from speechprobe.errors import SpeechprobeError
from speechprobe.models.registry import checkpoints, model_types, resolve_model

STUDY = {  # short name: (family, hub id, layers incl. 0, hidden size)
    "whisper-large-v3": ("whisper", "openai/whisper-large-v3", 33, 1280),
    "whisper-medium.en": ("whisper", "openai/whisper-medium.en", 25, 1024),
    "whisper-large-v2": ("whisper", "openai/whisper-large-v2", 33, 1280),
    "wav2vec2-large-960h-lv60-self": ("wav2vec2", "facebook/wav2vec2-large-960h-lv60-self", 25, 1024),
    "wav2vec2-base": ("wav2vec2", "facebook/wav2vec2-base", 13, 768),
    "xls-r": ("wav2vec2", "facebook/wav2vec2-xls-r-300m", 25, 1024),
    "hubert-large-ll60k": ("hubert", "facebook/hubert-large-ll60k", 25, 1024),
    "hubert-base-ls960": ("hubert", "facebook/hubert-base-ls960", 13, 768),
    "wavlm-large": ("wavlm", "microsoft/wavlm-large", 25, 1024),
    "wavlm-base-plus": ("wavlm", "microsoft/wavlm-base-plus", 13, 768),
    "data2vec-audio-base": ("data2vec-audio", "facebook/data2vec-audio-base", 13, 768),
    "seamless-m4t-v2-large": ("seamless", "facebook/seamless-m4t-v2-large", 25, 1024),
    "qwen2-audio-7b-instruct": ("qwen2-audio", "Qwen/Qwen2-Audio-7B-Instruct", 33, 1280),
    "qwen2-audio-7b": ("qwen2-audio", "Qwen/Qwen2-Audio-7B", 33, 1280),
    "resemblyzer": ("resemblyzer", None, 4, 256),
}


@pytest.mark.parametrize("name", list(STUDY))
def test_study_short_names(name):
    spec = checkpoints()[name]
    assert (spec.family, spec.hub_id, spec.num_layers, spec.hidden_size) == STUDY[name]
    assert spec.sample_rate == 16000


@pytest.mark.parametrize("model_type", sorted(model_types()))
def test_local_dir_family_from_model_type(tmp_path, model_type):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    spec, source = resolve_model(str(tmp_path))
    assert spec.family == model_types()[model_type] and source == str(tmp_path)


@pytest.mark.parametrize(
    "hub_id, family",
    [
        ("facebook/seamless-m4t-v2-large", "seamless"),
        ("Qwen/Qwen2-Audio-7B-Instruct", "qwen2-audio"),
        ("facebook/hubert-large-ls960-ft", "hubert"),
        ("microsoft/wavlm-base-plus-sv", "wavlm"),
        ("facebook/data2vec-audio-large-960h", "data2vec-audio"),
        ("facebook/wav2vec2-xls-r-1b", "wav2vec2"),
    ],
)
def test_hub_id_family(hub_id, family):
    assert resolve_model(hub_id)[0].family == family


def test_wrong_architecture_dir_lists_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "wav2vec2-bert"}')
    with pytest.raises(SpeechprobeError, match="'wav2vec2-bert' is not supported.*seamless_m4t_v2"):
        resolve_model(str(tmp_path))


def test_unknown_short_name_lists_close_matches():
    with pytest.raises(SpeechprobeError, match="wavlm-large"):
        resolve_model("wavlm-larg")
