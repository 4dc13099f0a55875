"""The real multilingual whisper-base (converted offline from its PyPI package) answers a spoken-word
task zero-shot, well above chance, through its decoder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from speechprobe.zeroshot import ZeroShotConfig, run_zeroshot

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from speechprobe.errors import SpeechprobeError
    from speechprobe.models.packaged import packaged_files

    try:
        packaged_files("whisper-base")
    except SpeechprobeError as e:  # pragma: no cover - the PyPI weight packages are not installed
        pytest.skip(f"packaged whisper-base not installed: {e}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core box: one thread is faster and deterministic
    out = tmp_path_factory.mktemp("real-zeroshot")
    cfg = ZeroShotConfig(
        models=["whisper-base"],
        tasks=["spoken_word"],
        out=out,
        n_per_class=2,
        prompts=["choose"],
        modes=["likelihood", "likelihood_raw", "likelihood_cc", "likelihood_pmi", "likelihood_bc", "generate"],
        window="trimmed",
        max_new_tokens=5,
        progress=False,
    )
    try:
        yield run_zeroshot(cfg), out
    finally:
        torch.set_num_threads(threads)


def test_whisper_base_likelihood_is_well_above_chance(real_run):
    results, out = real_run
    f1 = results.set_index(["probe", "metric"])["value"]
    chance = 1 / 8
    assert f1["zeroshot:likelihood:choose", "macro_f1"] > 0.5  # 4x chance
    assert f1["zeroshot:likelihood:choose", "accuracy"] > 0.5
    assert f1["zeroshot:likelihood_raw:choose", "macro_f1"] > 0.5
    assert f1["zeroshot:generate:choose", "macro_f1"] > 2 * chance  # free text, parsed
    responses = pd.read_csv(out / "zeroshot" / "whisper-base" / "spoken_word.csv")
    assert len(responses) == 16 * 6  # generate and five likelihood modes (raw, per-token, cc, pmi, bc)
    settings = json.loads((out / "manifest.json").read_text())["zeroshot"]["models"]["whisper-base"]["settings"]
    assert settings["multilingual"] is True and settings["language"] == "en"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """The two packaged checkpoints as 30 s window backends, one thread, and a few real clips."""
    from speechprobe.data.resolve import open_task
    from speechprobe.errors import SpeechprobeError
    from speechprobe.models.packaged import packaged_files
    from speechprobe.zeroshot import load_backend

    try:
        packaged_files("whisper-base"), packaged_files("whisper-tiny.en")
    except SpeechprobeError as e:  # pragma: no cover - the PyPI weight packages are not installed
        pytest.skip(f"packaged Whisper not installed: {e}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("real-native")
    _, language = open_task("language", cache, seed=0, n_per_class=2)
    _, words = open_task("spoken_word", cache, seed=0, n_per_class=1)
    try:
        yield (
            {name: load_backend(name, prompt_as="previous") for name in ("whisper-base", "whisper-tiny.en")},
            list(language),
            next(iter(words)),
        )
    finally:
        torch.set_num_threads(threads)


def test_no_speech_head_on_content_free_inputs(packaged):
    from speechprobe.zeroshot import content_free_inputs

    backends, language, _ = packaged
    inputs = content_free_inputs(16000)
    for name, backend in backends.items():
        assert "no-speech" in backend.native_heads()
        enc = backend.encode([c.audio for c in inputs] + [language[0].audio])
        p = np.exp(backend.native_scores(enc, "no-speech", ["no-speech", "speech"]))
        np.testing.assert_allclose(p.sum(1), 1)
        # silence and low noise: no speech (whisper-base 0.93, 0.94, 0.90; tiny.en 0.95, 0.93, 0.87); a sentence: speech
        assert (p[:3, 0] > 0.8).all() and p[3, 0] < 0.15, (name, p[:, 0])
    assert set(backends["whisper-tiny.en"].native_heads()) == {"no-speech"}  # English-only: no language tokens


def test_whisper_base_language_identification(packaged):
    backends, language, _ = packaged
    base = backends["whisper-base"]
    codes = ["en", "de", "fr", "es"]
    lid = base.native_scores(base.encode([c.audio for c in language]), "language-id", codes)
    np.testing.assert_allclose(np.exp(lid).sum(1), 1)
    named = {"english": "en", "german": "de", "french": "fr", "spanish": "es"}
    hits = [codes[int(i)] == named[c.label] for i, c in zip(lid.argmax(1), language)]
    assert np.mean(hits) >= 0.75  # 6 of 8 (both French clips are heard as English); chance 0.25


def test_packed_scores_equal_one_prompt_and_label_at_a_time(packaged):
    """Likelihood mode's one packed decoder call per clip, on the real whisper-base and its 30 s window."""
    from speechprobe.zeroshot import score_labels, score_prompts

    backends, language, word = packaged
    base = backends["whisper-base"]
    prompts = ["Which language is spoken? (English, German, French or Spanish)", "", "The language is"]
    labels = ["English", "German", "French", "Spanish", "Swiss German"]
    enc = base.encode([language[7].audio, word.audio])
    items = [(row, p) for row in (0, 1) for p in prompts]
    packed = score_prompts(base, enc, items, labels)
    for j, (row, prompt) in enumerate(items):
        one = enc.select([row])
        alone = [score_labels(base, one, [prompt], [label]).raw[0, 0] for label in labels]
        np.testing.assert_allclose(packed[j], alone, rtol=0, atol=1e-4)
    # a Spanish sentence asked with the options: Spanish by 0.8 nats (raw scores favour English on most
    # clips of other languages: the label prior that the calibrated modes divide out, docs/zeroshot.md)
    assert int(np.argmax(packed[0][:4])) == 3, packed[0]
