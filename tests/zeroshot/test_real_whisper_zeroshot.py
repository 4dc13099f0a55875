"""The real multilingual whisper-base (converted offline from its PyPI package) answers a spoken-word
task zero-shot, well above chance, through its decoder."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from speechprobe.zeroshot import ZeroShotConfig, run_zeroshot

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from speechprobe.errors import SpeechprobeError
    from speechprobe.models.ctranslate2 import packaged_files

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
        modes=["likelihood", "generate"],
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
    assert len(responses) == 16 * 3
    settings = json.loads((out / "manifest.json").read_text())["zeroshot"]["models"]["whisper-base"]["settings"]
    assert settings["multilingual"] is True and settings["language"] == "en"
