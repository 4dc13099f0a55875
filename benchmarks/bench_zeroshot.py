"""Likelihood zero-shot against encoder-only extraction of the same clips and window.

    python benchmarks/bench_zeroshot.py               # whisper-base, spoken_word, 16 clips, 4 prompts, 30 s window
    python benchmarks/bench_zeroshot.py --clips 280 --task spoken_word --threads 2
    python benchmarks/bench_zeroshot.py --window trimmed --naive

Every path runs in this process on the same clips, after one warm-up pass:

``extraction``   encoder-only feature extraction (``speechprobe.features.extract``: every layer, pooled,
                 into a fresh feature store), the reference the zero-shot time is divided by;
``zero-shot``    what a zero-shot batch does (``engines.answer_batch``): each clip encoded once, then per
                 clip one decoder call over all prompts' prefixes (the audio's keys and values computed
                 once, shared as views) and one over every prompt x phrasing continuation;
``per prompt``   the path before: each clip encoded once, then one prefix decode per (clip, prompt), each
                 recomputing the audio's keys and values, and its label continuations;
``re-encode``    (``--naive``) a full encode and score for every (clip, label).

Prints each time, zero-shot / extraction (target at most 1.3 on a CPU with whisper-base and the 30 s
window), per prompt / zero-shot, and the largest difference between the zero-shot and per-prompt scores
(must be below 1e-4). The packaged ``whisper-base`` converts offline; other models need local weights.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPTS = {  # four templates (the reference run: 4 prompts x 7 labels)
    "choose": "Choose one of: {labels}.",
    "question": "{question} ({labels_or})",
    "one-word": "Answer with one word, {labels_or}.",
    "task": "The {task} is",
}


def _clips(task_name: str, n: int, cache: Path | None):
    from speechprobe.cache import cache_root
    from speechprobe.data.resolve import open_task

    task, source = open_task(task_name, cache_root(cache), seed=0, n_per_class=max(1, -(-n // 8)))
    clips = []
    for clip in source:
        clips.append(clip)
        if len(clips) == n:
            break
    return task, clips


def _extraction(model: str, clips, window: str, dtype: str | None, batch_seconds: float) -> float:
    from speechprobe.features.extract import extract
    from speechprobe.features.store import FeatureStore
    from speechprobe.models.registry import load_model

    adapter = load_model(model, window=window, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        space = FeatureStore(tmp).space(model, "bench", adapter.options())
        extract(adapter, clips[:2], space, max_batch_seconds=batch_seconds)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        space = FeatureStore(tmp).space(model, "bench", adapter.options())
        t0 = time.perf_counter()
        extract(adapter, clips, space, max_batch_seconds=batch_seconds)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--task", default="spoken_word")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--window", default="full", choices=["full", "trimmed"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--naive", action="store_true", help="also time re-encoding for every (clip, label)")
    ap.add_argument("--cache", type=Path, default=None, help="speechprobe cache (synthetic clips, converted weights)")
    args = ap.parse_args(argv)

    import torch

    from speechprobe.data.audio import resample
    from speechprobe.zeroshot import Questions, load_backend, score_labels
    from speechprobe.zeroshot.engines import answer_batch
    from speechprobe.zeroshot.prompts import PromptTemplate
    from speechprobe.zeroshot.responses import verbalised

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    task, clips = _clips(args.task, args.clips, args.cache)
    words = verbalised(task)
    shown = [forms[0] for forms in words.phrasings]
    prompts = [PromptTemplate(k, v, "bench").render(task.name, shown) for k, v in PROMPTS.items()]
    backend = load_backend(
        args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size, window=args.window
    )
    audios = [resample(c.audio, c.sample_rate, backend.sample_rate) for c in clips]
    batches = [list(range(i, min(i + args.batch_size, len(audios)))) for i in range(0, len(audios), args.batch_size)]
    ask = Questions(words.flat)

    def sync() -> None:
        if backend.device.type == "cuda":
            torch.cuda.synchronize()

    def ours() -> np.ndarray:
        out = []
        for rows in batches:
            jobs = {("likelihood", f"p{j}"): [(r, p) for r in range(len(rows))] for j, p in enumerate(prompts)}
            answered, _ = answer_batch(backend, [audios[i] for i in rows], jobs, ask)
            out.append(np.stack([[rec["raw"] for rec in answered[job]] for job in jobs], axis=1))
        sync()
        return np.concatenate(out)  # (clips, prompts, phrasings)

    def per_prompt() -> np.ndarray:
        out = []
        for rows in batches:
            enc = backend.encode([audios[i] for i in rows])
            out.append(np.stack([score_labels(backend, enc, [p] * len(rows), words.flat).raw for p in prompts], 1))
        sync()
        return np.concatenate(out)

    def re_encode() -> np.ndarray:
        out = np.zeros((len(audios), len(prompts), len(words.flat)))
        for rows in batches:
            for j, p in enumerate(prompts):
                for k, v in enumerate(words.flat):
                    enc = backend.encode([audios[i] for i in rows])
                    out[rows, j, k] = score_labels(backend, enc, [p] * len(rows), [v]).raw[:, 0]
        sync()
        return out

    def timed(fn) -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        result = fn()
        return time.perf_counter() - t0, result

    with torch.inference_mode():
        answer_batch(backend, audios[:1], {("likelihood", "p0"): [(0, prompts[0])]}, ask)  # warm-up
        t_ours, a = timed(ours)
        t_prompt, b = timed(per_prompt)
        t_naive, c = timed(re_encode) if args.naive else (float("nan"), None)
    t_extract = _extraction(args.model, clips, args.window, args.dtype, 120.0 if args.window == "full" else 60.0)
    diff = float(np.max(np.abs(a - b)))
    dev = torch.cuda.get_device_name() if backend.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    audio_s = sum(len(x) for x in audios) / backend.sample_rate
    print(
        f"model {backend.name} ({args.window} window), task {task.name}: {len(clips)} clips ({audio_s:.0f} s of audio)"
        f" x {len(prompts)} prompts x {len(words.flat)} phrasings ({len(words.labels)} labels), device {dev}"
    )
    print(f"encoder-only extraction        : {t_extract:8.2f} s")
    print(f"zero-shot likelihood (ours)    : {t_ours:8.2f} s  -> {t_ours / t_extract:5.2f}x extraction")
    print(f"one prefix per (clip, prompt)  : {t_prompt:8.2f} s  -> {t_prompt / t_extract:5.2f}x extraction")
    print(f"ratio (per prompt / ours)      : {t_prompt / t_ours:8.2f}x")
    if c is not None:
        print(f"re-encode for every label      : {t_naive:8.2f} s  -> {t_naive / t_ours:5.2f}x ours")
        diff = max(diff, float(np.max(np.abs(a - c))))
    print(f"same scores: max |diff| = {diff:.2e} (limit 1e-4)")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
