"""Shared fixtures: an isolated cache, a tiny random Whisper checkpoint, a small labelled audio folder, Ray."""

from __future__ import annotations

import os

# Before any HF library is imported: they read these once, at import time. No test uses the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Ray (>= 2.52) turns token authentication on for every local instance and, without a token,
# writes one to ~/.ray/auth_token: the tests' clusters use this token instead (inherited by every
# Ray process they start), so they never write into the user's home.
os.environ.setdefault("RAY_AUTH_TOKEN", "speechprobe-tests-" + os.urandom(16).hex())

import atexit
import csv
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# The test session's speechprobe cache: a temporary folder, set here, at import, so that module- and
# session-scoped fixtures (which run before any function-scoped one) never reach the user's cache
# either, nor do the subprocesses tests start (they inherit the variable). It is one folder for the
# whole session, not one per test, because converting a packaged Whisper checkpoint into it takes tens
# of seconds and several test modules need one; a test that needs a cold or private cache passes its
# own (``--cache tmp_path / "cache"`` or ``SPEECHPROBE_CACHE`` in the subprocess's environment).
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="speechprobe-test-cache-"))
os.environ["SPEECHPROBE_CACHE"] = str(SESSION_CACHE)
atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch):
    """Every test starts with the session's temporary cache, whatever an earlier test set."""
    monkeypatch.setenv("SPEECHPROBE_CACHE", str(SESSION_CACHE))


def make_tiny_whisper(path: Path, layers: int = 2, d_model: int = 32, n_mels: int = 80, seed: int = 0) -> Path:
    """Save a tiny randomly initialised Whisper (encoder + decoder) and its feature extractor."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    cfg = WhisperConfig(
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        vocab_size=100,
        max_source_positions=1500,
        max_target_positions=64,
        num_mel_bins=n_mels,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(seed)
    WhisperForConditionalGeneration(cfg).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=n_mels).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ray_session(request):
    """One local Ray instance (2 CPUs) for a test module (skipped without Ray).

    The module's own functions, and the faulty models of ``ray_faults``, travel to the workers by value
    (workers cannot import test modules).
    """
    ray = pytest.importorskip("ray")
    import ray_faults

    for module in (request.module, ray_faults):
        ray.cloudpickle.register_pickle_by_value(module)
    if ray.is_initialized():  # pragma: no cover - someone else's session
        yield
        return
    os.environ.setdefault("RAY_worker_niceness", "0")  # as speechprobe's own local instance: no starving workers
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


def tone_dataset(root: Path, n_per_class: int = 8, seed: int = 0) -> Path:
    """Three classes of noisy tones (pitch carries the label), 4 speakers each crossing all classes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, f0 in (("low", 140.0), ("mid", 260.0), ("high", 420.0)):
        for i in range(n_per_class):
            sr = (16000, 22050, 8000)[i % 3]
            t = np.arange(int(sr * rng.uniform(0.6, 1.6))) / sr
            y = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.02 * rng.standard_normal()) * t)
            y = (y + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
            name = f"{label}_{i}.wav"
            sf.write(root / name, y, sr)
            rows.append((name, label, f"spk{i % 4}"))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        w.writerows(rows)
    return root / "manifest.csv"


@pytest.fixture
def tones(tmp_path) -> Path:
    return tone_dataset(tmp_path / "tones")
