import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

from gpu import check_cuda_parity, cuda_only
from speechprobe.errors import SpeechprobeError
from speechprobe.models.registry import load_model


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 23456, 40000, 3200)]


def test_reports_exact_layers_and_keeps_layerdrop_off(tiny_whisper):
    a = load_model(str(tiny_whisper))
    assert a.num_layers == 3
    assert a.info.hidden_size == 32 and a.info.frame_rate == 50.0
    assert a.encoder.config.layerdrop == 0.0 and not a.encoder.training


def test_golden_full_window_equals_transformers_hidden_states(tiny_whisper, clips):
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper).eval()
    fe = WhisperFeatureExtractor.from_pretrained(tiny_whisper)
    clip = clips[1]
    feats = fe(clip, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        hs = model.model.encoder(feats, output_hidden_states=True).hidden_states
    n_real = int(np.ceil(np.ceil(len(clip) / 160) / 2))
    gold = torch.stack([h[0, :n_real].mean(0) for h in hs]).numpy()
    ours = load_model(str(tiny_whisper)).forward([clip])[0]
    np.testing.assert_allclose(ours, gold, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("window", ["full", "trimmed"])
@pytest.mark.parametrize("pooling", ["mean", "mean+std"])
def test_batched_equals_one_at_a_time(tiny_whisper, clips, window, pooling):
    a = load_model(str(tiny_whisper), window=window)
    batched = a.forward(clips, pooling)
    single = np.concatenate([a.forward([c], pooling) for c in clips])
    assert batched.shape == (4, 3, 32 if pooling == "mean" else 64)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_trimmed_differs_from_full_but_layer0_frames_agree(tiny_whisper, clips):
    full = load_model(str(tiny_whisper), window="full").forward(clips[:1])
    trim = load_model(str(tiny_whisper), window="trimmed").forward(clips[:1])
    # Layer 0 (conv front end + positions) sees the same real frames apart from the edge frame.
    assert np.abs(full[0, 0] - trim[0, 0]).max() < 0.05
    assert np.abs(full[0, -1] - trim[0, -1]).max() > 1e-4  # attention context differs


@pytest.mark.slow
def test_random_init_is_named_and_differs(tiny_whisper, clips):
    trained = load_model(str(tiny_whisper))
    rand = load_model(str(tiny_whisper), random_init=True, seed=3)
    assert rand.name.endswith("+random") and rand.info.revision.startswith("random:seed3")
    assert not np.allclose(trained.forward(clips[:1]), rand.forward(clips[:1]))
    again = load_model(str(tiny_whisper), random_init=True, seed=3)
    np.testing.assert_array_equal(rand.forward(clips[:1]), again.forward(clips[:1]))


def test_long_clip_is_cut_to_the_window(tiny_whisper):
    a = load_model(str(tiny_whisper), window="trimmed")
    assert a.max_seconds() == 30.0
    out = a.forward([np.zeros(16000 * 31, np.float32) + 0.01])
    assert np.isfinite(out).all()


def test_unknown_model_names_close_matches():
    with pytest.raises(SpeechprobeError, match="whisper-base"):
        load_model("whisper-bsae")


def test_wrong_architecture_dir_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(SpeechprobeError, match="bert"):
        load_model(str(tmp_path))


def test_unreachable_hub_id_says_offline_and_how_to_fix():
    with pytest.raises(SpeechprobeError, match="local-dir"):
        load_model("openai/whisper-nonexistent-xyz")


@pytest.mark.parametrize("n_queries", [600, 37])
def test_cpu_low_precision_attention_blocks_match_sdpa(n_queries, monkeypatch):
    from speechprobe.models import whisper
    from speechprobe.models.whisper import _attend, additive_key_mask

    monkeypatch.setattr(whisper, "SCORE_BLOCK_BYTES", 2 * 3 * 600 * 2 * 256)  # blocks of 256 query rows

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 16, generator=g).bfloat16() for n in (n_queries, 600, 600))
    valid = torch.arange(600)[None, :] < torch.tensor([[600], [410]])
    mask = additive_key_mask(valid, torch.float32)
    got = _attend(q * 0.25, k, v, mask).float()
    want = torch.nn.functional.scaled_dot_product_attention(
        q.float() * 0.25, k.float(), v.float(), attn_mask=mask, scale=1.0
    )
    # 37 queries: one block; 600: three blocks, the last one ragged
    assert got.shape == want.shape and got.dtype == torch.float32
    err = (got - want).abs().max().item()
    assert 1e-4 < err < 2e-2  # bf16 rounding, but nothing more
    # Masked keys get no weight: changing their values leaves clip 1's answer unchanged.
    v2 = v.clone()
    v2[1, :, 410:] = 100.0
    assert torch.equal(_attend(q * 0.25, k, v2, mask)[1], _attend(q * 0.25, k, v, mask)[1])


@pytest.mark.slow
@pytest.mark.parametrize("window", ["full", "trimmed"])
def test_bf16_on_cpu_is_close_to_float32_with_float32_norms(tiny_whisper, clips, window):
    exact = load_model(str(tiny_whisper), window=window).forward(clips)
    low = load_model(str(tiny_whisper), window=window, dtype="bf16")
    assert low.options() == {"window": window, "dtype": "torch.bfloat16+f32conv"}  # CPU: float32 convolutions
    assert low.encoder.layers[0].fc1.weight.dtype == torch.bfloat16 and low.encoder.conv1.weight.dtype == torch.bfloat16
    assert low.encoder.layer_norm.weight.dtype == torch.float32  # norms and the residual stream stay float32
    got = low.forward(clips)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    rel = np.linalg.norm(got - exact, axis=-1) / np.linalg.norm(exact, axis=-1)
    assert 1e-6 < rel.max() < 3e-2, rel.max(0)  # computed in bf16 (float32 gives 0), and close


def test_trimmed_batches_padded_to_the_gpu_shape_step_give_the_same_features(tiny_whisper, clips):
    exact = load_model(str(tiny_whisper), window="trimmed")
    assert exact.shape_step == 1  # on a CPU: no padding beyond the batch's longest clip
    stepped = load_model(str(tiny_whisper), window="trimmed")
    stepped.shape_step = 64  # what a GPU uses: 40000 samples = 250 mel frames are padded to 256
    for batch in (clips, clips[3:]):  # mixed lengths; one clip alone (20 mel frames padded to 64)
        np.testing.assert_allclose(stepped.forward(batch), exact.forward(batch), rtol=1e-4, atol=1e-5)


@cuda_only
@pytest.mark.parametrize("window", ["full", "trimmed"])
def test_cuda_matches_cpu_in_float32_bf16_and_fp16(tiny_whisper, clips, window):
    check_cuda_parity(lambda **kw: load_model(str(tiny_whisper), window=window, **kw), clips)
