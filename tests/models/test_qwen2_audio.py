"""Qwen2-Audio audio encoder: only the audio tower is read; tiny random checkpoint via the local-dir path."""

import json

import numpy as np
import pytest
import torch
from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor
from transformers.masking_utils import create_bidirectional_mask

from gpu import check_cuda_parity, cuda_only
from speechprobe.errors import SpeechprobeError
from speechprobe.models.family import load_adapter
from speechprobe.models.registry import family, load_model

LAYERS = 2


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A tiny Qwen2-Audio saved in many shards; the shards without audio-tower weights are then deleted."""
    cfg = Qwen2AudioConfig(
        audio_config={
            "d_model": 32,
            "encoder_layers": LAYERS,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 64,
            "num_mel_bins": 128,
            "encoder_layerdrop": 0.3,
        },
        text_config={
            "model_type": "qwen2",
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 64,
            "vocab_size": 200,
        },
    )
    path = tmp_path_factory.mktemp("tiny-qwen2-audio")
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(cfg)
    model.save_pretrained(path, max_shard_size="40KB")
    WhisperFeatureExtractor(feature_size=128).save_pretrained(path)
    weight_map = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    audio = {f for k, f in weight_map.items() if k.startswith("audio_tower.")}
    others = set(weight_map.values()) - audio
    assert others  # the language model lives in shards of its own
    for shard in others:
        (path / shard).unlink()
    return path, model.model.audio_tower.eval()


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 23456, 3200, 100)]


def test_loads_only_the_audio_tower_and_reports_layers(tiny_qwen):
    path, _ = tiny_qwen
    a = load_model(str(path))  # the registry's local-dir path; LM shards are absent
    assert a.info.family == "qwen2-audio" and a.num_layers == LAYERS + 1
    assert a.info.hidden_size == 32 and a.logmel.n_mels == 128 and a.max_seconds() == 30.0
    assert type(a.encoder).__name__ == "Qwen2AudioEncoder" and not a.encoder.training
    assert a.encoder.layerdrop == 0.0 and a.encoder.config.encoder_layerdrop == 0.0


@pytest.mark.slow
def test_golden_equals_transformers_hidden_states(tiny_qwen, clips):
    """As Qwen2-Audio runs its tower: 30 s of mels, padding masked; the last layer is avg-pooled + LN."""
    path, encoder = tiny_qwen
    fe = WhisperFeatureExtractor(feature_size=128)
    a = load_model(str(path))
    for clip in (clips[1], clips[3]):  # 1.5 s, and a 6 ms clip (one frame; the last layer keeps one)
        inputs = fe(clip, sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
        frames, out_frames = encoder._get_feat_extract_output_lengths(inputs["attention_mask"].sum(-1))
        real = (torch.arange(1500)[None] < frames[:, None]).long()
        mask = create_bidirectional_mask(
            config=encoder.config, inputs_embeds=torch.zeros(1, 1500, 1), attention_mask=real
        )
        with torch.no_grad():
            hs = encoder(inputs["input_features"], attention_mask=mask, output_hidden_states=True).hidden_states
        assert len(hs) == LAYERS + 1 and hs[-1].shape[1] == 750
        n, k = int(frames), max(1, int(out_frames))
        gold = torch.stack([h[0, :n].mean(0) for h in hs[:-1]] + [hs[-1][0, :k].mean(0)]).numpy()
        np.testing.assert_allclose(a.forward([clip])[0], gold, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("window", ["full", "trimmed"])
def test_batched_equals_one_at_a_time(tiny_qwen, clips, window):
    a = load_model(str(tiny_qwen[0]), window=window)
    batched = a.forward(clips, "mean+std")
    single = np.concatenate([a.forward([c], "mean+std") for c in clips])
    assert batched.shape == (4, LAYERS + 1, 64)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_trimmed_window_is_close_to_full(tiny_qwen, clips):
    """Padding is masked in attention, so trimming only changes the convolutions at the clip's end.

    Measured on this tiny model (relative L2 deviation of the pooled layers): 0.006 at 1 s,
    0.011 at 1.5 s, 0.025 at 0.2 s; a 6 ms clip (one frame, all edge) reaches 0.6.
    """
    path = str(tiny_qwen[0])
    full = load_model(path).forward(clips[:2])
    trim = load_model(path, window="trimmed").forward(clips[:2])
    rel = np.linalg.norm(full - trim, axis=-1) / np.linalg.norm(full, axis=-1)
    assert rel.max() < 0.02


def test_random_init_is_named_and_differs(tiny_qwen, clips):
    path = str(tiny_qwen[0])
    trained, rand = (
        load_model(path, window="trimmed"),
        load_model(path, window="trimmed", random_init=True, seed=5),
    )
    assert rand.name.endswith("+random") and rand.info.revision.startswith("random:seed5")
    assert trained.info.revision.startswith("sha256:")
    assert not np.allclose(trained.forward(clips[:1]), rand.forward(clips[:1]))


def test_wrong_architecture_is_named(tiny_whisper):
    with pytest.raises(SpeechprobeError, match="'whisper' checkpoint, not Qwen2-Audio"):
        load_adapter(family("qwen2-audio"), str(tiny_whisper))  # a family handed another family's checkpoint


def test_unreachable_hub_id_says_offline():
    with pytest.raises(SpeechprobeError, match="local-dir"):
        load_model("qwen2-audio-7b")


@pytest.mark.slow
@pytest.mark.parametrize("window", ["full", "trimmed"])
def test_bf16_on_cpu_is_close_to_float32(tiny_qwen, clips, window):
    exact = load_model(str(tiny_qwen[0]), window=window).forward(clips)
    low = load_model(str(tiny_qwen[0]), window=window, dtype="bf16")
    assert low.encoder.layers[0].fc1.weight.dtype == torch.bfloat16
    got = low.forward(clips)
    rel = np.linalg.norm(got - exact, axis=-1) / np.linalg.norm(exact, axis=-1)
    assert 1e-6 < rel.max() < 3e-2, rel.max(0)


def test_trimmed_batches_padded_to_the_gpu_shape_step_give_the_same_features(tiny_qwen, clips):
    exact = load_model(str(tiny_qwen[0]), window="trimmed").forward(clips)
    stepped = load_model(str(tiny_qwen[0]), window="trimmed")
    stepped.shape_step = 64  # as on a GPU: the batch is padded past its longest clip, to 192 mel frames
    np.testing.assert_allclose(stepped.forward(clips), exact, rtol=1e-4, atol=1e-5)


@cuda_only
@pytest.mark.parametrize("window", ["full", "trimmed"])
def test_cuda_matches_cpu_in_float32_bf16_and_fp16(tiny_qwen, clips, window):
    check_cuda_parity(lambda **kw: load_model(str(tiny_qwen[0]), window=window, **kw), clips)
