"""Whisper extraction throughput: our pipeline (full and trimmed windows) vs a naive loop.

The naive loop takes one clip at a time, pads it to 30 s with the stock feature extractor, runs the
encoder with ``output_hidden_states=True`` and mean-pools each layer over the real frames. Our
path streams the same clips through ``speechprobe.features.extract`` into a fresh feature store.
Also reports pipeline overhead: our extraction divided by the bare encoder forwards over the same
batches. Prints ratios measured in this run.

    python benchmarks/bench_whisper.py [--model whisper-base] [--clips 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from speechprobe.data.clip import Clip
from speechprobe.features.batching import duration_batches
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.models.registry import load_model, resolve_model


def make_clips(n: int, seed: int = 0) -> list[Clip]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        dur = rng.uniform(1.0, 3.0)
        t = np.arange(int(16000 * dur)) / 16000
        y = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.02 * rng.standard_normal(len(t))
        out.append(Clip(f"c{i}", y.astype(np.float32), 16000, "x"))
    return out


@torch.inference_mode()
def naive(source: str, clips: list[Clip]) -> float:
    from transformers import WhisperFeatureExtractor, WhisperModel

    model = WhisperModel.from_pretrained(source).eval()
    fe = WhisperFeatureExtractor.from_pretrained(source)
    t0 = time.perf_counter()
    for c in clips:
        feats = fe(c.audio, sampling_rate=16000, return_tensors="pt").input_features
        hs = model.encoder(feats, output_hidden_states=True).hidden_states
        n = int(np.ceil(np.ceil(len(c.audio) / 160) / 2))
        np.stack([h[0, :n].mean(0).numpy() for h in hs])
    return time.perf_counter() - t0


def ours(name: str, clips: list[Clip], window: str, batch_seconds: float) -> tuple[float, float]:
    """(pipeline seconds, bare forward seconds over the same batches)."""
    adapter = load_model(name, window=window)
    with tempfile.TemporaryDirectory() as tmp:
        space = FeatureStore(tmp).space(name, "bench", {"window": window})
        t0 = time.perf_counter()
        extract(adapter, clips, space, max_batch_seconds=batch_seconds)
        total = time.perf_counter() - t0
    audios = [c.audio for c in clips]
    batches = list(duration_batches(audios, lambda a: adapter.window_seconds(len(a) / 16000), batch_seconds))
    t0 = time.perf_counter()
    for b in batches:
        adapter.forward(b)
    return total, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--clips", type=int, default=24)
    args = ap.parse_args()
    torch.manual_seed(0)
    clips = make_clips(args.clips)
    audio_s = sum(c.duration for c in clips)
    _, source = resolve_model(args.model)
    ours(args.model, clips[:2], "trimmed", 30.0)  # warm-up (allocator, kernels)
    t_naive = naive(source, clips)
    print(f"{args.model}: {len(clips)} clips of 1-3 s ({audio_s:.0f} s of audio), torch threads {torch.get_num_threads()}")
    print(f"  naive loop (30 s pad, output_hidden_states, one clip at a time): {audio_s / t_naive:7.1f} s audio / s")
    for window, budget in (("full", 120.0), ("trimmed", 60.0)):
        total, bare = ours(args.model, clips, window, budget)
        print(
            f"  ours, window={window:<8}: {audio_s / total:7.1f} s audio / s  -> {t_naive / total:5.2f}x naive;"
            f"  pipeline overhead {total / bare:4.2f}x bare forwards"
        )


if __name__ == "__main__":
    main()
