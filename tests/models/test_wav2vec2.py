"""wav2vec 2.0 / HuBERT / WavLM / data2vec-audio: tiny random checkpoints through the local-dir path."""

import numpy as np
import pytest
import torch
from transformers import (
    Data2VecAudioConfig,
    Data2VecAudioModel,
    HubertConfig,
    HubertModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    WavLMConfig,
    WavLMModel,
)

from gpu import check_cuda_parity, cuda_only
from speechprobe.errors import SpeechprobeError
from speechprobe.models.family import load_adapter
from speechprobe.models.registry import family, load_model

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "conv_dim": (16, 16, 16),
    "conv_stride": (5, 4, 4),
    "conv_kernel": (10, 8, 4),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "layerdrop": 0.3,  # must be switched off by the adapter
}
# (name, config class, model class, feature-encoder norm); "layer" models are pre-LN ("stable").
KINDS = [
    ("wav2vec2-group", Wav2Vec2Config, Wav2Vec2ForCTC, "group"),
    ("wav2vec2-layer", Wav2Vec2Config, Wav2Vec2ForCTC, "layer"),
    ("hubert-group", HubertConfig, HubertModel, "group"),
    ("hubert-layer", HubertConfig, HubertModel, "layer"),
    ("wavlm-group", WavLMConfig, WavLMModel, "group"),
    ("wavlm-layer", WavLMConfig, WavLMModel, "layer"),
    ("data2vec-audio", Data2VecAudioConfig, Data2VecAudioModel, "layer"),
]
NAMES = [k[0] for k in KINDS]
LAYER_NORM = [k[0] for k in KINDS if k[3] == "layer"]
GROUP_NORM = [k[0] for k in KINDS if k[3] == "group"]


def make_tiny(path, config_cls, model_cls, norm, seed=0):
    extra = (
        {}
        if config_cls is Data2VecAudioConfig
        else {"feat_extract_norm": norm, "do_stable_layer_norm": norm == "layer"}
    )
    cfg = config_cls(**TINY, **extra, vocab_size=12)
    torch.manual_seed(seed)
    model_cls(cfg).save_pretrained(path)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=norm == "layer").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return {name: make_tiny(tmp_path_factory.mktemp(name), c, m, n) for name, c, m, n in KINDS}


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 11728, 20000, 3200, 150)]


def base_model(path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(path).eval()


def fe_input(path, audio):
    fe = Wav2Vec2FeatureExtractor.from_pretrained(path)
    return fe(audio, sampling_rate=16000, return_tensors="pt", padding=True).input_values


@pytest.mark.parametrize("name", NAMES)
def test_layers_family_and_layerdrop_off(tiny, name):
    a = load_model(str(tiny[name]))  # the registry's local-dir path
    assert a.num_layers == 3
    assert a.info.family == name.split("-group")[0].split("-layer")[0]
    assert a.info.hidden_size == 32 and a.info.frame_rate == 16000 / 80
    assert a.model.config.layerdrop == 0.0 and not a.model.training
    assert ("no attention mask" in a.info.padding) == name.endswith("-group")


@pytest.mark.parametrize("name", NAMES)
def test_golden_equals_transformers_hidden_states(tiny, clips, name):
    """Layers 0..N-1 are HF ``hidden_states``; layer N is the encoder output (with the final LN of pre-LN models)."""
    model = base_model(tiny[name])
    with torch.no_grad():
        out = model(fe_input(tiny[name], clips[1]), output_hidden_states=True)
    gold = torch.stack([h[0].mean(0) for h in out.hidden_states[:-1]] + [out.last_hidden_state[0].mean(0)]).numpy()
    ours = load_model(str(tiny[name])).forward([clips[1]])[0]
    np.testing.assert_allclose(ours, gold, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", LAYER_NORM)
def test_layer_norm_models_batched_equals_one_at_a_time(tiny, clips, name):
    a = load_model(str(tiny[name]))
    batched = a.forward(clips, "mean+std")  # the mean is its first half
    single = np.concatenate([a.forward([c], "mean+std") for c in clips])
    assert batched.shape == (5, 3, 64)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(a.forward(clips[:2], "mean"), batched[:2, :, :32], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", GROUP_NORM)
def test_group_norm_models_get_zero_padding_without_mask(tiny, clips, name):
    """The padded batch is exactly what transformers computes without a mask, pooled over real frames.

    Each clip is normalised over its own samples, then zero-padded. (transformers' feature extractor,
    asked for no attention mask, would normalise over the padding too and leave it non-zero.)
    """
    a = load_model(str(tiny[name]))
    model = base_model(tiny[name])
    values = torch.nn.utils.rnn.pad_sequence([fe_input(tiny[name], c)[0] for c in clips[:3]], batch_first=True)
    with torch.no_grad():
        out = model(values, output_hidden_states=True)  # no attention_mask, as in training
    frames = model._get_feat_extract_output_lengths(torch.tensor([len(c) for c in clips[:3]]))
    layers = list(out.hidden_states[:-1]) + [out.last_hidden_state]
    gold = np.stack([[h[i, : frames[i]].mean(0).numpy() for h in layers] for i in range(3)])
    np.testing.assert_allclose(a.forward(clips[:3]), gold, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", GROUP_NORM)
def test_group_norm_batching_deviation_is_small_for_similar_durations(tiny, clips, name):
    """Group norm's statistics include the padded zeros, so batched != alone; the deviation grows with padding.

    Measured relative L2 deviation of a clip's pooled layers, batched with a clip of the stated extra
    length vs alone (tiny random model here; a randomly initialised full wav2vec2-base gave, for the
    deepest layer, 0.023 at 2 %, 0.063 at 5 %, 0.12 at 10 %, 0.35 at 25 % padding). The extractor
    sorts clips by duration before batching, which keeps the padding of a batch small. Clips of
    equal length are unaffected.
    """
    a = load_model(str(tiny[name]))
    long = clips[2]
    alone = a.forward([long])[0]
    same_length = a.forward([long, clips[2][::-1].copy()])[0]
    np.testing.assert_allclose(same_length, alone, atol=1e-5)
    for padding, tolerance in ((0.02, 0.02), (0.05, 0.05)):
        short = long[: int(len(long) * (1 - padding))]
        batched, alone = a.forward([long, short])[1], a.forward([short])[0]
        rel = np.linalg.norm(batched - alone, axis=-1) / np.linalg.norm(alone, axis=-1)
        assert rel.max() < tolerance, (padding, rel)


def test_short_clip_is_padded_to_one_frame(tiny):
    a = load_model(str(tiny["wavlm-layer"]))
    assert a.min_samples == 10 + 7 * 5 + 3 * 20  # the feature encoder's receptive field (400 in real models)
    out = a.forward([np.full(10, 0.1, np.float32), np.zeros(0, np.float32)])
    assert out.shape == (2, 3, 32) and np.isfinite(out).all()


def test_random_init_is_named_and_differs(tiny, clips):
    path = str(tiny["hubert-layer"])
    trained, rand = load_model(path), load_model(path, random_init=True, seed=3)
    assert rand.name.endswith("+random") and rand.info.revision.startswith("random:seed3")
    assert trained.info.revision.startswith("sha256:")
    assert not np.allclose(trained.forward(clips[:1]), rand.forward(clips[:1]))
    np.testing.assert_array_equal(
        rand.forward(clips[:1]), load_model(path, random_init=True, seed=3).forward(clips[:1])
    )


def test_bf16_autocast_stays_close_to_fp32(tiny, clips):
    path = str(tiny["wav2vec2-layer"])
    fp32, bf16 = load_model(path).forward(clips[:2]), load_model(path, dtype="bf16").forward(clips[:2])
    rel = np.linalg.norm(bf16 - fp32, axis=-1) / np.linalg.norm(fp32, axis=-1)
    assert rel.max() < 0.05


def test_wrong_architecture_is_named(tiny_whisper):
    with pytest.raises(SpeechprobeError, match="'whisper' checkpoint, not one of wav2vec2"):
        load_adapter(family("wav2vec2"), str(tiny_whisper))  # a family handed another family's checkpoint


def test_without_preprocessor_config_normalises_only_layer_norm_models(tmp_path):
    group = make_tiny(tmp_path / "g", Wav2Vec2Config, Wav2Vec2ForCTC, "group")
    layer = make_tiny(tmp_path / "l", Wav2Vec2Config, Wav2Vec2ForCTC, "layer")
    for path in (group, layer):
        (path / "preprocessor_config.json").unlink()
    assert not load_model(str(group)).normalize
    assert load_model(str(layer)).normalize


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wavlm-layer", "wav2vec2-group"])
def test_bf16_on_cpu_batched_is_close_to_float32(tiny, clips, name):
    exact = load_model(str(tiny[name])).forward(clips[:3])
    got = load_model(str(tiny[name]), dtype="bf16").forward(clips[:3])
    rel = np.linalg.norm(got - exact, axis=-1) / np.linalg.norm(exact, axis=-1)
    assert 1e-6 < rel.max() < 3e-2, rel.max(0)


@cuda_only
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu_in_float32_bf16_and_fp16(tiny, clips, name):
    path = str(tiny[name])
    check_cuda_parity(lambda **kw: load_model(path, **kw), clips[:3], batched=name in LAYER_NORM)
