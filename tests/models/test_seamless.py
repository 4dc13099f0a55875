"""SeamlessM4T v2 speech encoder: explicit layer definition, tiny random checkpoint via the local-dir path."""

import numpy as np
import pytest
import torch
from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2Config, SeamlessM4Tv2ForSpeechToText

from gpu import check_cuda_parity, cuda_only
from speechprobe.errors import SpeechprobeError
from speechprobe.models.family import load_adapter
from speechprobe.models.registry import family, load_model

LAYERS = 3


@pytest.fixture(scope="module")
def tiny_seamless(tmp_path_factory):
    """Speech encoder + text decoder (the hub layout: ``speech_encoder.*`` next to decoder weights)."""
    cfg = SeamlessM4Tv2Config(
        vocab_size=100,
        t2u_vocab_size=50,
        char_vocab_size=50,
        hidden_size=32,
        speech_encoder_layers=LAYERS,
        speech_encoder_attention_heads=4,
        speech_encoder_intermediate_size=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        t2u_encoder_layers=1,
        t2u_decoder_layers=1,
        max_position_embeddings=64,
        unit_embed_dim=16,
        speech_encoder_layerdrop=0.3,
    )
    path = tmp_path_factory.mktemp("tiny-seamless")
    torch.manual_seed(0)
    SeamlessM4Tv2ForSpeechToText(cfg).save_pretrained(path)
    SeamlessM4TFeatureExtractor().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 23456, 40000, 3200, 100)]


def test_layer_count_is_feature_projection_plus_each_conformer_layer(tiny_seamless):
    a = load_model(str(tiny_seamless))  # the registry's local-dir path
    assert a.info.family == "seamless" and a.num_layers == LAYERS + 1 == len(a.encoder.encoder.layers) + 1
    assert a.info.hidden_size == 32 and a.info.frame_rate == 50.0
    assert a.encoder.config.speech_encoder_layerdrop == 0.0 and not a.encoder.training
    assert not hasattr(a, "text_decoder") and type(a.encoder).__name__ == "SeamlessM4Tv2SpeechEncoder"


def test_golden_explicit_layers(tiny_seamless, clips):
    """Layers 0..N-1 equal HF ``hidden_states``; layer N is the Conformer's layer-normed output.

    HF's own ``hidden_states[-1]`` is the length adaptor's output with 8x fewer frames, which is why
    the layers are defined explicitly.
    """
    speech = SeamlessM4Tv2ForSpeechToText.from_pretrained(tiny_seamless).eval().speech_encoder
    inputs = SeamlessM4TFeatureExtractor()(clips[1], sampling_rate=16000, return_tensors="pt")
    n = int(inputs["attention_mask"].sum())
    with torch.no_grad():
        out = speech(**inputs, output_hidden_states=True)
        conformer = speech.encoder(
            speech.feature_projection(inputs["input_features"]), attention_mask=inputs["attention_mask"]
        )
    assert len(out.hidden_states) == LAYERS + 1
    assert out.hidden_states[-1].shape[1] < out.hidden_states[0].shape[1]  # the transformers quirk
    gold = torch.stack([h[0, :n].mean(0) for h in out.hidden_states[:-1]] + [conformer[0, :n].mean(0)]).numpy()
    ours = load_model(str(tiny_seamless)).forward([clips[1]])[0]
    np.testing.assert_allclose(ours, gold, atol=1e-5)


def test_batched_equals_one_at_a_time(tiny_seamless, clips):
    a = load_model(str(tiny_seamless))
    batched = a.forward(clips, "mean+std")
    single = np.concatenate([a.forward([c], "mean+std") for c in clips])
    assert batched.shape == (5, LAYERS + 1, 64)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_random_init_is_named_and_differs(tiny_seamless, clips):
    trained = load_model(str(tiny_seamless))
    rand = load_model(str(tiny_seamless), random_init=True, seed=1)
    assert rand.name.endswith("+random") and rand.info.revision.startswith("random:seed1")
    assert trained.info.revision.startswith("sha256:")
    assert not np.allclose(trained.forward(clips[:1]), rand.forward(clips[:1]))


def test_wrong_architecture_is_named(tiny_whisper):
    with pytest.raises(SpeechprobeError, match="'whisper' checkpoint, not SeamlessM4T v2"):
        load_adapter(family("seamless"), str(tiny_whisper))  # a family handed another family's checkpoint


def test_unreachable_hub_id_says_offline():
    with pytest.raises(SpeechprobeError, match="local-dir"):
        load_model("facebook/seamless-m4t-v2-nonexistent-xyz")


@cuda_only
def test_cuda_matches_cpu_in_float32_bf16_and_fp16(tiny_seamless, clips):
    check_cuda_parity(lambda **kw: load_model(str(tiny_seamless), **kw), clips)
