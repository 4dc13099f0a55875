"""Decoder states and the logit lens on tiny seeded checkpoints: shapes, the position rules, the state the
likelihood modes read, batching, and the feature-store key (the prompt is part of it)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from speechprobe.errors import ConfigError
from speechprobe.features.store import FeatureStore
from speechprobe.zeroshot import ZeroShotConfig, load_backend, run_zeroshot
from speechprobe.zeroshot import engines as engines_mod
from speechprobe.zeroshot.decoder_states import decoder_records
from speechprobe.zeroshot.scoring import label_tokens

PHRASINGS = ["yes", "no", "up down", "stop"]
PROMPTS = ["choose one of: yes, no, up down, stop.", "which word is spoken?"]
FIXTURES = {"whisper": "tiny_whisper_dec", "qwen": "tiny_qwen", "seamless": "tiny_seamless"}


@pytest.fixture(scope="module", params=list(FIXTURES))
def backend(request):
    return load_backend(str(request.getfixturevalue(FIXTURES[request.param])), batch_size=3)


def test_states_lens_and_the_state_the_likelihood_modes_read(backend, noise_clips):
    enc = backend.encode(noise_clips[:3])
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[0]]
    firsts = [t[0] for t in label_tokens(backend, PHRASINGS)]
    records = decoder_records(backend, enc, prompts, firsts)
    _, head = backend.lens_parts()
    layers = len((backend.lm if hasattr(backend, "lm") else backend.decoder).layers) + 1
    rules = {"last", "audio_mean"} if hasattr(backend, "lm") else {"last"}
    for i, rec in enumerate(records):
        assert set(rec["states"]) == rules and rec["lens"].shape == (layers, 2 * len(PHRASINGS))
        assert all(s.shape == (layers, head.in_features) and s.dtype == np.float32 for s in rec["states"].values())
        one = enc.select([i])
        # the lens at the last layer is the next-token distribution the likelihood modes score the answer from
        start = backend.start(one, [prompts[i]]).last_logprobs[0]
        np.testing.assert_allclose(rec["lens"][-1, : len(PHRASINGS)], start[firsts].numpy(), atol=1e-4)
        ranks = rec["lens"][:, len(PHRASINGS) :]
        assert ranks[-1, 0] == int((start > start[firsts[0]]).sum()) and (ranks >= 0).all()
        alone = decoder_records(backend, one, [prompts[i]], firsts)[0]  # batched (padded) = one clip alone
        for rule, states in rec["states"].items():
            np.testing.assert_allclose(states, alone["states"][rule], atol=1e-4)
    assert not np.allclose(records[0]["states"]["last"], records[2]["states"]["last"])  # the clip is heard


@torch.inference_mode()
def test_qwen_audio_mean_is_the_mean_over_the_audio_tokens(tiny_qwen, noise_clips):
    backend = load_backend(str(tiny_qwen))
    enc = backend.encode(noise_clips[:1])
    _, spans, out = backend._run_prefix(enc, PROMPTS[:1], output_hidden_states=True)
    before, _ = backend.parts(PROMPTS[0])
    assert spans == [(len(before), len(before) + enc.frames[0])]  # one row: no padding before it
    want = backend.layer_states(out)[0, :, len(before) : len(before) + enc.frames[0]].mean(1)
    got = decoder_records(backend, enc, PROMPTS[:1], [0])[0]["states"]["audio_mean"]
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_zero_shot_run_keeps_states_in_the_feature_store(tmp_path, tiny_qwen, monkeypatch):
    calls = []
    original = engines_mod.decoder_records
    monkeypatch.setattr(engines_mod, "decoder_records", lambda *a: calls.append(len(a[2])) or original(*a))
    base = dict(tasks=["spoken_word"], n_per_class=1, modes=["likelihood"], batch_size=4, progress=False)
    cfg = ZeroShotConfig(
        models=[str(tiny_qwen)], out=tmp_path / "run", prompts=["choose", "question"], decoder_states=True, **base
    )
    cfg.cache = tmp_path / "cache"
    run_zeroshot(cfg)
    assert sum(calls) == 8  # one prefix pass per clip, for the first prompt only
    manifest = json.loads((cfg.out / "manifest.json").read_text())["zeroshot"]
    info = manifest["tasks"]["spoken_word"]["by_model"][tiny_qwen.name]["decoder"]
    assert info["prompt_id"] == "choose" and info["prompt"].startswith("Choose one of: yes, no")
    assert set(info["spaces"]) == {"last", "audio_mean", "lens"} and len(info["phrasings"]) == 8
    store = FeatureStore(info["store"])
    items = list((store.root / info["spaces"]["last"] / "items").rglob("*.npy"))
    assert len(items) == 8
    run_zeroshot(cfg)  # a rerun computes nothing already stored
    assert sum(calls) == 8
    cfg.decoder_prompt = "question"  # another prompt: other spaces (the prompt is part of the key)
    run_zeroshot(cfg)
    again = json.loads((cfg.out / "manifest.json").read_text())["zeroshot"]["tasks"]["spoken_word"]["by_model"]
    assert sum(calls) == 16 and again[tiny_qwen.name]["decoder"]["spaces"]["last"] != info["spaces"]["last"]
    with pytest.raises(ConfigError, match="--decoder-prompt instruction"):
        run_zeroshot(ZeroShotConfig(**{**vars(cfg), "prompts": ["instruction"], "decoder_prompt": "instruction"}))


@pytest.mark.slow
@torch.inference_mode()
def test_real_whisper_tiny_en_states_are_the_plain_forwards_hidden_states(noise_clips):
    from speechprobe.errors import SpeechprobeError
    from speechprobe.models.packaged import packaged_files

    try:
        packaged_files("whisper-tiny.en")
    except SpeechprobeError as e:  # pragma: no cover - the PyPI weight packages are not installed
        pytest.skip(f"packaged whisper-tiny.en not installed: {e}")
    backend = load_backend("whisper-tiny.en", window="trimmed", batch_size=2)
    enc = backend.encode(noise_clips[:2])
    prompt = "Choose one of: happy, sad."
    firsts = [t[0] for t in label_tokens(backend, ["happy", "sad"])]
    records = decoder_records(backend, enc, [prompt] * 2, firsts)
    assert records[0]["states"]["last"].shape == (5, 384) and records[0]["lens"].shape == (5, 4)  # 4 decoder layers
    prefix = torch.tensor([backend.prefix_ids(prompt)])
    for i, rec in enumerate(records):  # the model's own forward, no cache: every layer at the last prompt position
        one = enc.select([i]).tensors["hidden"]
        out = backend.model(encoder_outputs=(one,), decoder_input_ids=prefix, output_hidden_states=True)
        want = torch.stack(out.decoder_hidden_states, 1)[0, :, -1]
        np.testing.assert_allclose(rec["states"]["last"], want.numpy(), atol=1e-4)
        np.testing.assert_allclose(
            rec["lens"][-1, :2], torch.log_softmax(out.logits[0, -1], -1)[firsts].numpy(), atol=1e-4
        )
