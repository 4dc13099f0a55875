"""Extraction throughput of the model-zoo families vs a naive one-clip-at-a-time loop.

For each family a full-size architecture is built with random weights (same compute as the real
checkpoints, which are not needed, so this runs offline); resemblyzer uses its real packaged weights.
The naive loop is what a user writes with transformers alone: the stock feature extractor, one clip
at a time, ``output_hidden_states=True``, then a mean over each layer's frames (for resemblyzer:
the adapter on one clip at a time). Ours streams the same clips through
``speechprobe.features.extract`` (duration batches, masked pooling, feature store). Prints audio
seconds per second for both and their ratio, measured in this run.

    python benchmarks/bench_extraction.py [--families base|all|NAME,NAME] [--clips 16] [--device cpu]

``base`` (the default) runs the base-size models and resemblyzer; ``all`` adds the large ones
(wav2vec2-large, SeamlessM4T v2 speech encoder, Qwen2-Audio encoder), which want a GPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speechprobe.data.clip import Clip
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.models.registry import load_model


def _w2v(cls_name: str, **kw):
    def build(path: Path) -> None:
        import transformers

        getattr(transformers, cls_name)(**kw).save_pretrained(path)
        transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(path)

    return build


def _seamless(path: Path) -> None:
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4Tv2Config

    SeamlessM4Tv2Config().save_pretrained(path)  # seamless-m4t-v2-large's sizes
    SeamlessM4TFeatureExtractor().save_pretrained(path)


def _qwen(path: Path) -> None:
    from transformers import Qwen2AudioEncoderConfig, WhisperFeatureExtractor

    Qwen2AudioEncoderConfig().save_pretrained(path)  # the 7B models' audio encoder: 32 x 1280
    WhisperFeatureExtractor(feature_size=128).save_pretrained(path)


BUILDERS = {
    "wav2vec2-base": _w2v("Wav2Vec2Config"),  # group norm: padded without mask
    "hubert-base": _w2v("HubertConfig"),
    "wavlm-base-plus": _w2v("WavLMConfig"),
    "data2vec-audio-base": _w2v("Data2VecAudioConfig"),
    "wav2vec2-large": _w2v(
        "Wav2Vec2Config",
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    ),
    "seamless-m4t-v2-speech": _seamless,
    "qwen2-audio-encoder": _qwen,
    "resemblyzer": None,
}
BASE = ["wav2vec2-base", "hubert-base", "wavlm-base-plus", "data2vec-audio-base", "resemblyzer"]


def make_clips(n: int, seed: int = 0) -> list[Clip]:
    """Speech-like test signals of 1-3 s (pitch contour, amplitude envelope, noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(16000 * rng.uniform(1.0, 3.0))) / 16000
        f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 6))
        y = 0.1 * y * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.01 * rng.standard_normal(len(t))
        out.append(Clip(f"c{i}", y.astype(np.float32), 16000, "x"))
    return out


@torch.inference_mode()
def naive(family: str, adapter, path: Path, clips: list[Clip]) -> float:
    """Seconds for the plain transformers loop, one clip at a time, on the adapter's own modules."""
    from transformers import AutoFeatureExtractor

    if family == "resemblyzer":
        t0 = time.perf_counter()
        for c in clips:
            adapter.forward([c.audio])
        return time.perf_counter() - t0
    fe = AutoFeatureExtractor.from_pretrained(path)
    device = adapter.device
    if family in ("qwen2-audio-encoder", "seamless-m4t-v2-speech"):
        model, key = adapter.encoder, "input_features"
    else:
        model, key = adapter.model, "input_values"
    t0 = time.perf_counter()
    for c in clips:
        inputs = fe(c.audio, sampling_rate=16000, return_tensors="pt")
        kwargs = {k: v.to(device) for k, v in inputs.items() if k in (key, "attention_mask")}
        out = model(**kwargs, output_hidden_states=True)
        np.stack([h[0].mean(0).float().cpu().numpy() for h in out.hidden_states])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def ours(adapter, clips: list[Clip], batch_seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        space = FeatureStore(tmp).space(adapter.name, adapter.info.revision, adapter.options())
        t0 = time.perf_counter()
        extract(adapter, clips, space, max_batch_seconds=batch_seconds)
        if adapter.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="base", help="base, all, or comma-separated names: " + ", ".join(BUILDERS))
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="bf16 / fp16 autocast (accelerators)")
    ap.add_argument("--batch-seconds", type=float, default=60.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    names = BASE if args.families == "base" else list(BUILDERS) if args.families == "all" else args.families.split(",")
    clips = make_clips(args.clips)
    audio_s = sum(c.duration for c in clips)
    print(
        f"{len(clips)} clips of 1-3 s ({audio_s:.0f} s of audio), device {args.device}, dtype {args.dtype or 'fp32'}, "
        f"torch threads {torch.get_num_threads()}, batches <= {args.batch_seconds:.0f} s of padded audio"
    )
    results = []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp)
            if BUILDERS[name] is None:
                adapter = load_model("resemblyzer", device=args.device, dtype=args.dtype)
            else:
                BUILDERS[name](path)
                adapter = load_model(str(path), random_init=True, device=args.device, dtype=args.dtype)
            adapter.forward([clips[0].audio, clips[1].audio])  # warm-up (allocator, kernels)
            modes = [("", adapter)]
            if name == "qwen2-audio-encoder":
                trimmed = load_model(
                    str(path), random_init=True, window="trimmed", device=args.device, dtype=args.dtype
                )
                modes.append((" trimmed", trimmed))
            with torch.autocast(adapter.device.type, dtype=getattr(adapter, "dtype", None), enabled=bool(args.dtype)):
                t_naive = naive(name, adapter, path, clips)
            for label, a in modes:
                t_ours = ours(a, clips, args.batch_seconds)
                row = {
                    "family": name + label,
                    "layers": a.num_layers,
                    "naive_audio_s_per_s": audio_s / t_naive,
                    "ours_audio_s_per_s": audio_s / t_ours,
                    "speedup": t_naive / t_ours,
                }
                results.append(row)
                print(
                    f"  {row['family']:<30} {a.num_layers:3d} layers  naive {row['naive_audio_s_per_s']:8.3g} s audio/s"
                    f"   ours {row['ours_audio_s_per_s']:8.3g} s audio/s   -> {row['speedup']:5.2f}x naive"
                )
            del adapter, modes
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
