"""Whisper extraction throughput: our pipeline (full and trimmed windows) vs a naive loop.

The naive loop takes one clip at a time, pads it to 30 s with the stock feature extractor, runs the
encoder with ``output_hidden_states=True`` and mean-pools each layer over the real frames. Our
path streams the same clips through ``speechprobe.features.extract`` into a fresh feature store.
Also reports pipeline overhead: our extraction divided by the bare encoder forwards over the same
batches. With ``--dtype bf16`` (default: both float32 and bf16) our path computes in bfloat16, as
``--dtype bf16`` does on the CLI; the naive loop stays float32, and each bf16 row also prints how far
its features are from our float32 features (largest relative L2 difference of a clip's layer vector,
smallest cosine). Prints ratios measured in this run.

    python benchmarks/bench_whisper.py [--model whisper-base] [--clips 24] [--dtype float32,bf16]
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


def ours(
    name: str, clips: list[Clip], window: str, batch_seconds: float, dtype: str
) -> tuple[float, float, np.ndarray]:
    """(pipeline seconds, bare forward seconds over the same batches, the stored features)."""
    adapter = load_model(name, window=window, dtype=None if dtype == "float32" else dtype)
    with tempfile.TemporaryDirectory() as tmp:
        space = FeatureStore(tmp).space(name, adapter.info.revision, adapter.options())
        t0 = time.perf_counter()
        extract(adapter, clips, space, max_batch_seconds=batch_seconds)
        total = time.perf_counter() - t0
        feats = np.stack([space.get(c.content_hash) for c in clips])
    audios = [c.audio for c in clips]
    batches = list(duration_batches(audios, lambda a: adapter.window_seconds(len(a) / 16000), batch_seconds))
    t0 = time.perf_counter()
    for b in batches:
        adapter.forward(b)
    return total, time.perf_counter() - t0, feats


def deviation(low: np.ndarray, exact: np.ndarray) -> str:
    """Largest relative L2 difference and smallest cosine over every (clip, layer) feature vector."""
    rel = np.linalg.norm(low - exact, axis=-1) / np.linalg.norm(exact, axis=-1)
    cos = (low * exact).sum(-1) / (np.linalg.norm(low, axis=-1) * np.linalg.norm(exact, axis=-1))
    return f"vs float32: max rel diff {rel.max():.1e}, min cosine {cos.min():.6f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--dtype", default="float32,bf16", help="comma-separated: float32, bf16, fp16")
    args = ap.parse_args()
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    torch.manual_seed(0)
    clips = make_clips(args.clips)
    audio_s = sum(c.duration for c in clips)
    _, source = resolve_model(args.model)
    for dtype in dtypes:
        ours(args.model, clips[:2], "full", 30.0, dtype)  # warm-up (allocator, kernels)
    t_naive = naive(source, clips)
    print(
        f"{args.model}: {len(clips)} clips of 1-3 s ({audio_s:.0f} s of audio), torch threads {torch.get_num_threads()}"
    )
    print(f"  naive loop (30 s pad, output_hidden_states, one clip at a time): {audio_s / t_naive:7.1f} s audio / s")
    exact: dict[str, np.ndarray] = {}
    for dtype in dtypes:
        for window, budget in (("full", 120.0), ("trimmed", 60.0)):
            total, bare, feats = ours(args.model, clips, window, budget, dtype)
            line = (
                f"  ours, {dtype:<7} window={window:<8}: {audio_s / total:7.1f} s audio / s"
                f"  -> {t_naive / total:5.2f}x naive;"
                f"  pipeline overhead {total / bare:4.2f}x bare forwards"
            )
            if dtype == "float32":
                exact[window] = feats
            elif window in exact:
                line += f"\n      {deviation(feats, exact[window])}"
            print(line)


if __name__ == "__main__":
    main()
