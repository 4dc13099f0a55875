"""Backends on tiny seeded checkpoints: likelihood scores equal a plain full forward of the model,
batched equals one clip at a time, and answers are deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpu import cuda_only
from speechprobe.zeroshot import greedy_generate, load_backend, score_labels, score_prompts
from speechprobe.zeroshot.scoring import label_tokens

LABELS = ["yes", "no", "up down", "stop"]
PROMPT = "choose one of: yes, no, up down, stop."


def _full_sequence_logprob(logits: torch.Tensor, targets: list[int]) -> float:
    """Sum of log p(target_t) where ``logits`` (T, V) are the positions predicting ``targets``."""
    lp = torch.log_softmax(logits.float(), -1)
    return float(sum(lp[i, t] for i, t in enumerate(targets)))


@torch.inference_mode()
def _whisper_reference(backend, audio: np.ndarray, prompt: str, labels: list[str]) -> np.ndarray:
    """No cache, no reuse: the model's own forward on prefix + label + <|endoftext|> per label."""
    enc = backend.encode([audio]).tensors["hidden"]
    prefix = backend.prefix_ids(prompt)
    out = []
    for cand in label_tokens(backend, labels):
        ids = torch.tensor([prefix + cand[:-1]])
        logits = backend.model(encoder_outputs=(enc,), decoder_input_ids=ids).logits[0]
        out.append(_full_sequence_logprob(logits[len(prefix) - 1 :], cand))
    return np.array(out)


@torch.inference_mode()
def _qwen_reference(backend, audio: np.ndarray, prompt: str, labels: list[str]) -> np.ndarray:
    """Qwen2AudioForConditionalGeneration's own forward: expanded <|AUDIO|> tokens + input features."""
    tok, fe = backend.tokenizer, backend.fe
    feats = fe([audio], sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt")
    _, n_audio = backend.tower._get_feat_extract_output_lengths(feats["attention_mask"].sum(-1))
    before, after = backend.parts(prompt)
    audio_id = tok.convert_tokens_to_ids("<|AUDIO|>")
    prefix = before + [audio_id] * int(n_audio[0]) + after
    out = []
    for cand in label_tokens(backend, labels):
        ids = torch.tensor([prefix + cand[:-1]])
        logits = backend.model(
            input_ids=ids,
            input_features=feats["input_features"],
            attention_mask=torch.ones_like(ids),
            feature_attention_mask=feats["attention_mask"],
        ).logits[0]
        out.append(_full_sequence_logprob(logits[len(prefix) - 1 :], cand))
    return np.array(out)


@torch.inference_mode()
def _seamless_reference(backend, audio: np.ndarray, prompt: str, labels: list[str]) -> np.ndarray:
    feats = backend.fe([audio], sampling_rate=16000, return_attention_mask=True, padding=True, return_tensors="pt")
    prefix = backend.prefix_ids(prompt)
    out = []
    for cand in label_tokens(backend, labels):
        ids = torch.tensor([prefix + cand[:-1]])
        logits = backend.model(
            input_features=feats["input_features"], attention_mask=feats["attention_mask"], decoder_input_ids=ids
        ).logits[0]
        out.append(_full_sequence_logprob(logits[len(prefix) - 1 :], cand))
    return np.array(out)


KINDS = ["qwen-chat", "qwen-plain", "whisper", "whisper-trimmed", "seamless"]
FIXTURES = {"qwen": "tiny_qwen", "whisper": "tiny_whisper_dec", "seamless": "tiny_seamless"}
REFERENCES = {"qwen": _qwen_reference, "whisper": _whisper_reference, "seamless": _seamless_reference}


def _load(kind: str, request, **kwargs):
    """The backend of one test case (only its own checkpoint fixture is built); ``kwargs``: device, dtype."""
    family = kind.split("-")[0]
    path = str(request.getfixturevalue(FIXTURES[family]))
    if family == "qwen":
        return load_backend(path, chat_template=(kind == "qwen-chat"), batch_size=3, **kwargs)
    if family == "whisper":
        return load_backend(path, batch_size=3, window="trimmed" if "trimmed" in kind else "full", **kwargs)
    return load_backend(path, batch_size=3, **kwargs)


@pytest.fixture(scope="module", params=KINDS)
def backend_case(request):
    return _load(request.param, request), REFERENCES[request.param.split("-")[0]]


def test_likelihood_reuses_the_encoding_and_matches_a_plain_forward(backend_case, noise_clips):
    backend, reference = backend_case
    enc = backend.encode(noise_clips)
    scores = score_labels(backend, enc, [PROMPT] * len(noise_clips), LABELS)
    assert scores.raw.shape == (len(noise_clips), len(LABELS))
    assert np.all(scores.raw < 0) and np.all(np.isfinite(scores.raw))
    assert list(scores.n_tokens) == [len(c) for c in label_tokens(backend, LABELS)]
    np.testing.assert_allclose(scores.normalised, scores.raw / scores.n_tokens, rtol=1e-12)
    if backend.family == "whisper" and backend.window == "trimmed":
        return  # the reference forward would take the 30 s window
    for i in (0, 2):
        np.testing.assert_allclose(scores.raw[i], reference(backend, noise_clips[i], PROMPT, LABELS), atol=2e-4)


def test_batched_equals_one_clip_at_a_time(backend_case, noise_clips):
    backend, _ = backend_case
    prompts = [PROMPT, "", PROMPT, "which word is spoken?"]  # mixed prefixes in one batch
    enc = backend.encode(noise_clips)
    batched = score_labels(backend, enc, prompts, LABELS).raw
    answers = greedy_generate(backend, enc, prompts, max_new_tokens=6)
    for i, (clip, prompt) in enumerate(zip(noise_clips, prompts)):
        alone = backend.encode([clip])
        # padded batches change float32 rounding in SeamlessM4T's Conformer (~1e-5 relative)
        np.testing.assert_allclose(
            batched[i], score_labels(backend, alone, [prompt], LABELS).raw[0], rtol=5e-5, atol=1e-4
        )
        assert greedy_generate(backend, alone, [prompt], max_new_tokens=6) == [answers[i]]


def test_all_prompts_of_a_clip_in_one_pass_equal_one_at_a_time(backend_case, noise_clips):
    """score_prompts (one start over a clip's prompts of different lengths, sharing its audio's keys and
    values, one step over every prompt x label) gives the unbatched scores: one prompt, one label a call."""
    backend, _ = backend_case
    prompts = [PROMPT, "", "which word is spoken?", "the answer is", PROMPT]
    enc = backend.encode(noise_clips[:2])
    items = [(row, p) for row in (1, 0) for p in prompts]
    batched = score_prompts(backend, enc, items, LABELS)
    assert batched.shape == (len(items), len(LABELS)) and np.isfinite(batched).all()
    for j, (row, prompt) in enumerate(items):
        one = enc.select([row])
        alone = [score_labels(backend, one, [prompt], [label]).raw[0, 0] for label in LABELS]
        np.testing.assert_allclose(batched[j], alone, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(batched[0], batched[4])  # the same prompt twice: the same scores
    assert not np.array_equal(batched[0], batched[5])  # another clip


def test_whisper_native_heads(tiny_whisper_dec, noise_clips):
    w = load_backend(str(tiny_whisper_dec))
    heads = w.native_heads()
    assert set(heads) == {"language-id", "no-speech"}
    table = heads["language-id"]
    assert (table["german"], table["de"], table["castilian"], table["english"]) == ("de", "de", "es", "en")
    enc = w.encode(noise_clips)
    lid = w.native_scores(enc, "language-id", ["en", "de", "fr"])
    assert lid.shape == (4, 3) and np.allclose(np.exp(lid).sum(1), 1)  # restricted to the three languages
    speech = w.native_scores(enc, "no-speech", ["speech", "no-speech"])
    assert np.allclose(np.exp(speech).sum(1), 1) and (speech < 0).all()


def test_fixed_seed_gives_identical_answers(tmp_path, noise_clips):
    from zs_tiny_models import make_tiny_qwen2_audio

    runs = []
    for k in range(2):
        b = load_backend(str(make_tiny_qwen2_audio(tmp_path / f"q{k}", seed=7)), batch_size=4)
        enc = b.encode(noise_clips)
        runs.append((score_labels(b, enc, [PROMPT] * 4, LABELS).raw, greedy_generate(b, enc, [PROMPT] * 4, 8)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and all(isinstance(a, str) for a in runs[0][1])
    other = load_backend(str(make_tiny_qwen2_audio(tmp_path / "q-other", seed=8)))
    assert not np.allclose(score_labels(other, other.encode(noise_clips), [PROMPT] * 4, LABELS).raw, runs[0][0])


def test_backend_settings_record_what_changes_answers(tiny_qwen, tiny_whisper_dec):
    chat = load_backend(str(tiny_qwen), chat_template=True, system_prompt="Be brief.", batch_size=2).settings()
    assert chat["chat_template"] is True and chat["system_prompt"] == "Be brief." and chat["batch_size"] == 2
    assert "<|im_start|>assistant" in chat["template"]
    plain = load_backend(str(tiny_qwen), chat_template=False).settings()
    assert plain["chat_template"] is False and plain["system_prompt"] is None
    assert load_backend(str(tiny_qwen)).settings()["chat_template"] is False  # a base checkpoint: off by default
    w = load_backend(str(tiny_whisper_dec), prompt_as="previous")
    assert w.settings()["multilingual"] and w.settings()["language"] == "en"
    sot, en, transcribe, nots = (
        w.tokenizer.convert_tokens_to_ids(t)
        for t in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
    )
    ids = w.prefix_ids("Choose one of: yes, no.")
    assert ids[0] == w.tokenizer.convert_tokens_to_ids("<|startofprev|>") and ids[-4:] == [sot, en, transcribe, nots]
    assert w.prefix_ids("") == [sot, en, transcribe, nots]
    assert w.decode(w.answer_ids("yes")) == " yes"
    t = load_backend(str(tiny_whisper_dec))  # transcript: the default
    body = t.tokenizer.encode(" Choose one of: yes, no.", add_special_tokens=False)
    assert t.prefix_ids("Choose one of: yes, no.") == [sot, en, transcribe, nots, *body]
    assert t.settings()["prompt_as"] != w.settings()["prompt_as"]
    assert w.settings()["prompt_as_default"].startswith("transcript: ")  # the measured choice, in manifest.json


@cuda_only
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_scores_match_the_cpu(kind, request, noise_clips):
    prompts = [PROMPT, "", PROMPT, "which word is spoken?"]
    scores = {}
    for device, dtype in (("cpu", None), ("cuda", None), ("cuda", "bf16")):
        backend = _load(kind, request, device=device, dtype=dtype)
        scores[device, dtype] = score_labels(backend, backend.encode(noise_clips), prompts, LABELS).raw
        assert np.isfinite(scores[device, dtype]).all()
        assert all(isinstance(a, str) for a in greedy_generate(backend, backend.encode(noise_clips), prompts, 4))
    exact = scores["cpu", None]
    np.testing.assert_allclose(scores["cuda", None], exact, rtol=1e-3, atol=1e-3)
    low = scores["cuda", "bf16"]
    assert 0 < np.abs(low - exact).max() < 0.05 * np.abs(exact).max()  # computed in bf16, and close
