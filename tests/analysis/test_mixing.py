"""Context mixing: value zeroing and attention statistics on a toy encoder with hand-set attention, and on tiny
random configurations of every family with attention."""

import numpy as np
import pandas as pd
import pytest
import torch

from speechprobe.analysis.mixing import METRICS, aggregate, attention_stats, clip_mixing, query_rows
from speechprobe.analysis.replay import sample_clips
from speechprobe.analysis.zeroing import _Fold, fast_zeroing, head_updates, value_zeroing
from speechprobe.errors import SpeechprobeError
from speechprobe.models.attention import Encoder, encoder_of, watch
from speechprobe.models.registry import load_model
from speechprobe.parallel import single_threaded

T, D = 12, 8


class ToyAttention(torch.nn.Module):
    """Attention with a fixed pattern (T, T): out = pattern @ v_proj(h), weights returned as (B, 1, T, T)."""

    def __init__(self, pattern: torch.Tensor) -> None:
        super().__init__()
        self.pattern = pattern
        self.v_proj = torch.nn.Linear(D, D)

    def forward(self, h):
        weights = self.pattern.expand(h.shape[0], 1, T, T)
        return weights[:, 0] @ self.v_proj(h), weights


class ToyBlock(torch.nn.Module):
    def __init__(self, pattern: torch.Tensor) -> None:
        super().__init__()
        self.attention = ToyAttention(pattern)

    def forward(self, h):
        return h + self.attention(h)[0]


def _toy() -> Encoder:
    torch.manual_seed(0)
    idx = torch.arange(T)
    band = ((idx[:, None] - idx[None, :]).abs() <= 1).float()
    local, glob = ToyBlock(band / band.sum(1, keepdim=True)), ToyBlock(torch.full((T, T), 1.0 / T))
    embed = torch.randn(T, D)
    blocks = [local, glob]

    def run(audio):
        h = embed[None] * (1 + audio[:T, None])
        for b in blocks:
            h = b(h)

    return Encoder(blocks, [b.attention for b in blocks], [b.attention.v_proj for b in blocks], [], run, lambda n: T)


def test_value_zeroing_and_attention_order_a_local_layer_before_a_global_one():
    values = clip_mixing(_toy(), np.zeros(T, np.float32), frame_rate=50.0)
    m = dict(zip(METRICS, values.T))
    assert values.shape == (2, len(METRICS)) and np.isfinite(values).all()
    assert m["mixing_self"][0] > 2 * m["mixing_self"][1]  # the local layer keeps far more of each frame
    assert m["mixing_distance_ms"][0] < m["mixing_distance_ms"][1] / 2
    # attention distance, exactly: the band averages 1/2 (edge rows) and 2/3 (inner rows) frames; uniform
    # attention over T frames (T² - 1) / (3T) frames; 20 ms a frame
    assert m["attention_distance_ms"][0] == pytest.approx(20 * (2 * 0.5 + (T - 2) * 2 / 3) / T)
    assert m["attention_distance_ms"][1] == pytest.approx(20 * (T * T - 1) / (3 * T))
    assert m["attention_entropy"][1] == pytest.approx(np.log(T))  # uniform: the maximum
    assert m["attention_entropy"][0] == pytest.approx((2 * np.log(2) + (T - 2) * np.log(3)) / T)


def _zeroing_paths(encoder, audio, rows):
    with torch.no_grad(), single_threaded():
        with watch(encoder) as rec:
            encoder.run(torch.from_numpy(audio))
        rec.n_real = encoder.frames(len(audio))
        return [(value_zeroing(encoder, rec, i), fast_zeroing(encoder, rec, i, rows)) for i in range(2)]


FAST = ["toy", "whisper", "wav2vec2", "wav2vec2-stable", "hubert", "wavlm", "seamless", "qwen2_audio"]


@pytest.mark.parametrize("kind", FAST)
def test_the_fast_path_equals_the_exact_one(kind, tiny_whisper, tmp_path):
    if kind == "toy":
        encoder, audio = _toy(), np.zeros(T, np.float32)
        encoder.out_proj, encoder.pointwise = [None, None], True  # one head, no output projection
    else:
        path = tiny_whisper if kind == "whisper" else _tiny(kind, tmp_path / kind)
        encoder = encoder_of(load_model(str(path), window="trimmed"))
        audio = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    # the position-wise families fold their feed-forward's first linear (post-LN and pre-LN blocks alike)
    folded = {type(fc1).__name__ for _, fc1 in encoder.ffn_in or []}
    assert folded == (set() if kind in ("toy", "seamless") else {"Linear"})
    if kind == "wav2vec2-stable":  # the pre-LN block: its feed-forward reads final_layer_norm
        assert all(norm is b.final_layer_norm for (norm, _), b in zip(encoder.ffn_in, encoder.blocks))
    rows = np.array([0, 3, 7])  # sampled query frames (the Conformer, not position-wise, computes every row)
    for exact, fast in _zeroing_paths(encoder, audio, rows):
        assert exact.sum(axis=1) == pytest.approx(np.ones(len(exact)))  # rows normalised
        picked = exact[rows] if encoder.pointwise else exact
        assert fast.shape == picked.shape and np.abs(fast - picked).max() < 1e-3 * picked.max()


def test_the_folded_first_linear_is_what_the_block_computes(tiny_whisper):
    """The fold's product equals the feed-forward's first linear on the normed residual stream, row for row."""
    encoder = encoder_of(load_model(str(tiny_whisper), window="trimmed"))
    audio = (0.1 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32)
    with torch.no_grad(), watch(encoder) as rec:
        encoder.run(torch.from_numpy(audio))
    n, (args, kwargs) = encoder.frames(len(audio)), rec.calls[1]
    x, first = (args[0] if args else kwargs["hidden_states"])[0, :n], rec.attention_out[1]
    first = (first[0] if isinstance(first, tuple) else first)[0, :n]
    updates, weights = head_updates(encoder, rec, 1)[:, :n], rec.attention[1][0, :, :n, :n]
    fold = _Fold.of(encoder, 1, x + first, updates)
    js = torch.arange(2, 6)
    aw = weights[:, :, js]
    v = (x + first)[None] - torch.einsum("hrj,hjd->jrd", aw, updates[:, js])  # (J, rows, d)
    norm, fc1 = encoder.ffn_in[1]
    with torch.no_grad():
        want = torch.nn.functional.linear(norm(v), fc1.weight, fc1.bias)
        with fold.folding(aw, js):
            got = fc1(norm(v))
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5 * float(want.abs().max()))


def test_query_rows_are_a_seeded_sample_or_all():
    assert query_rows(5, None, 0).tolist() == [0, 1, 2, 3, 4] and query_rows(5, 9, 0).tolist() == [0, 1, 2, 3, 4]
    rows = query_rows(100, 10, seed=3)
    assert len(set(rows)) == 10 and rows.tolist() == sorted(rows) and rows.tolist() == query_rows(100, 10, 3).tolist()


def test_attention_stats_use_real_frames_only():
    w = torch.zeros(1, 1, 6, 6)
    w[0, 0, :, :] = 1 / 6  # uniform over 6 frames, of which 3 are real: renormalised over the 3
    entropy, distance = attention_stats(w, 3, 10.0)
    assert entropy == pytest.approx(np.log(3)) and distance == pytest.approx(10 * (3 + 2 + 3) / 9)


def test_aggregate_gives_mean_and_t_interval_per_class():
    values = np.array([1.0, 2.0, 3.0, 10.0])[:, None, None]
    table = aggregate(values, ["a", "a", "a", "b"], ["m"], [4])
    row = table[table["class"] == "a"].iloc[0]
    assert row["mean"] == 2.0 and row["n_clips"] == 3
    assert row["high"] - row["mean"] == pytest.approx(4.302653 * 1 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) s/√n
    lone = table[table["class"] == "b"].iloc[0]
    assert lone["mean"] == 10.0 and np.isnan(lone["low"])  # one clip: no interval
    assert table[table["class"] == "all"].iloc[0]["mean"] == 4.0


def test_aggregate_over_groups_counts_a_speakers_clips_as_one_unit():
    values = np.array([1.0, 3.0, 5.0, 10.0, 20.0])[:, None, None]  # two clips of s1, one of s2 (class a); b: s3, s4
    table = aggregate(values, ["a", "a", "a", "b", "b"], ["m"], [1], ["s1", "s1", "s2", "s3", "s4"], "speaker")
    a = table[table["class"] == "a"].iloc[0]
    assert (a["mean"], a["n_units"], a["n_clips"], a["unit"]) == (3.5, 2, 3, "speaker")  # mean of 2 and 5
    assert a["high"] - a["mean"] == pytest.approx(12.706205 * 1.5, rel=1e-5)  # t(.975, 1) s / √2, s = 1.5 √2
    every = table[table["class"] == "all"].iloc[0]
    assert every["mean"] == pytest.approx((2 + 5 + 10 + 20) / 4) and every["n_units"] == 4
    # labels varying within a speaker: each class averages that speaker's clips of the class
    mixed = aggregate(values, ["a", "b", "a", "b", "b"], ["m"], [1], ["s1", "s1", "s2", "s2", "s3"], "speaker")
    b = mixed[mixed["class"] == "b"].iloc[0]
    assert b["n_units"] == 3 and b["mean"] == pytest.approx((3 + 10 + 20) / 3)
    assert aggregate(values, list("aaabb"), ["m"], [1])["unit"].eq("clip").all()


def test_sample_spans_as_many_groups_as_it_can():
    clips = pd.DataFrame({"label": ["a"] * 6 + ["b"] * 6, "content_hash": [f"h{i}" for i in range(12)]})
    groups = np.array(["s1", "s1", "s1", "s2", "s2", "s3", "s4", "s4", "s4", "s4", "s5", "s6"])
    s = sample_clips(clips, 6, seed=0, groups=groups)
    picked = groups[[int(h[1:]) for h in s["content_hash"]]]
    assert len(s) == 6 and len(set(picked)) == 6 and (s["label"] == "a").sum() == 3  # every speaker once
    assert len(set(groups[[int(h[1:]) for h in sample_clips(clips, 8, 0, groups)["content_hash"]]])) == 6


def test_sample_is_bounded_balanced_and_seeded():
    clips = pd.DataFrame({"label": ["a"] * 10 + ["b"] * 3, "content_hash": [f"h{i}" for i in range(13)]})
    s = sample_clips(clips, 6, seed=1)
    assert len(s) == 6 and (s["label"] == "b").sum() == 3
    assert s.equals(sample_clips(clips, 6, seed=1)) and len(sample_clips(clips, 50, 0)) == 13


def _tiny(kind: str, path):
    torch.manual_seed(0)
    if kind in ("wav2vec2", "wav2vec2-stable", "hubert", "wavlm"):
        import transformers as tf

        cfg_class, model_class = {
            "wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model),
            "wav2vec2-stable": (tf.Wav2Vec2Config, tf.Wav2Vec2Model),
            "hubert": (tf.HubertConfig, tf.HubertModel),
            "wavlm": (tf.WavLMConfig, tf.WavLMModel),
        }[kind]
        stable = dict(do_stable_layer_norm=True, feat_extract_norm="layer") if kind.endswith("stable") else {}
        cfg = cfg_class(
            hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8, 8),
            conv_stride=(5, 4, 16), conv_kernel=(10, 4, 16), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
            **stable,
        )  # fmt: skip
        model_class(cfg).save_pretrained(path)
    elif kind == "seamless":
        from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2Config, SeamlessM4Tv2ForSpeechToText

        cfg = SeamlessM4Tv2Config(
            vocab_size=50, t2u_vocab_size=20, char_vocab_size=20, hidden_size=16, speech_encoder_layers=2,
            speech_encoder_attention_heads=2, speech_encoder_intermediate_size=32, encoder_layers=1,
            decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
            decoder_ffn_dim=32, t2u_encoder_layers=1, t2u_decoder_layers=1, max_position_embeddings=32,
            unit_embed_dim=8,
        )  # fmt: skip
        SeamlessM4Tv2ForSpeechToText(cfg).save_pretrained(path)
        SeamlessM4TFeatureExtractor().save_pretrained(path)
    else:  # qwen2_audio
        from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

        cfg = Qwen2AudioConfig(
            audio_config={"d_model": 16, "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 32},
            text_config={
                "model_type": "qwen2", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                "num_key_value_heads": 1, "intermediate_size": 32, "vocab_size": 50,
            },
        )  # fmt: skip
        Qwen2AudioForConditionalGeneration(cfg).save_pretrained(path)
        WhisperFeatureExtractor(feature_size=128).save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", ["whisper", "wav2vec2", "hubert", "wavlm", "seamless", "qwen2_audio"])
def test_every_family_gives_finite_scores_of_the_right_shape(kind, tiny_whisper, tmp_path):
    path = tiny_whisper if kind == "whisper" else _tiny(kind, tmp_path / kind)
    adapter = load_model(str(path), window="trimmed")
    audio = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)  # 0.5 s: 25 frames
    with single_threaded():
        values = clip_mixing(encoder_of(adapter), audio, adapter.info.frame_rate)
    assert values.shape == (adapter.num_layers - 1, len(METRICS)) and np.isfinite(values).all()
    m = dict(zip(METRICS, values.T))
    assert ((m["mixing_self"] > 0) & (m["mixing_self"] <= 1)).all()
    assert (m["attention_entropy"] <= np.log(25) + 1e-6).all()  # at most uniform over the 25 real frames
    assert (m["attention_distance_ms"] < 500).all()  # within the 0.5 s clip


def test_wavlm_hook_keeps_its_outputs_and_gives_head_wise_weights(tmp_path):
    adapter = load_model(str(_tiny("wavlm", tmp_path / "wavlm")), window="trimmed")
    x = torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal((1, 8000))).astype(np.float32))
    with torch.no_grad():
        before = adapter.model(x, output_hidden_states=True).hidden_states
        encoder = encoder_of(adapter)  # the projections called as modules from here on
        after = adapter.model(x, output_hidden_states=True).hidden_states
        with watch(encoder) as rec:
            encoder.run(x[0])
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    weights, n = rec.attention[1], encoder.frames(8000)
    assert weights.shape == (1, 2, n, n) and not torch.allclose(weights[0, 0], weights[0, 1])  # not averaged
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, n))


def test_hand_crafted_models_are_one_line_errors():
    with pytest.raises(SpeechprobeError, match="no transformer blocks"):
        encoder_of(load_model("duration"))


def test_the_attention_analyses_are_off_by_default_and_in_all():
    from speechprobe.analysis.registry import choose

    default, everything = choose({}, ""), choose({}, "all")
    assert not default["context_mixing"] and not default["attribution"]
    assert everything["context_mixing"] and everything["attribution"]
    assert choose({}, "+context_mixing")["context_mixing"] and not choose({}, "+context_mixing")["attribution"]


def test_cosine_distance_is_exact_where_the_vectors_are_nearly_parallel():
    from speechprobe.analysis.zeroing import cosine_distance

    rng = np.random.default_rng(0)
    b = rng.standard_normal((5, 64)).astype(np.float32)
    for eps in (1e-1, 1e-3, 1e-5):
        a = (b[None] + eps * rng.standard_normal((3, 5, 64))).astype(np.float32)  # float32 rows, as the blocks give
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        want = 0.5 * (
            (a64 / np.linalg.norm(a64, axis=-1, keepdims=True) - b64 / np.linalg.norm(b64, axis=-1, keepdims=True)) ** 2
        ).sum(-1)
        got = cosine_distance(torch.from_numpy(a), torch.from_numpy(b)[None]).numpy()
        assert np.allclose(got, want, rtol=1e-4, atol=0)
    scaled = cosine_distance(torch.from_numpy(2 * b)[None], torch.from_numpy(b)[None]).numpy()
    assert np.all(scaled < 1e-12)  # a rescaled vector: no distance


def test_each_clip_is_analysed_on_its_centred_window():
    from speechprobe.analysis.contract import AnalysisSettings
    from speechprobe.analysis.mixing import DEFAULT_SECONDS, _options, centred

    assert centred(np.arange(10), 4).tolist() == [3, 4, 5, 6] and centred(np.arange(3), 4).tolist() == [0, 1, 2]
    assert _options(AnalysisSettings())["seconds"] == DEFAULT_SECONDS == 2.0
    assert _options(AnalysisSettings(options={"context_mixing": {"seconds": 0.5}}))["seconds"] == 0.5
