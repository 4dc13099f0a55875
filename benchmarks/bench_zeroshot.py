"""Likelihood-mode speed: encode each clip once for all labels vs re-encode it for every label.

    python benchmarks/bench_zeroshot.py                     # whisper-base, spoken_word, 8 clips, 30 s window
    python benchmarks/bench_zeroshot.py --clips 16 --device cuda --window trimmed
    python benchmarks/bench_zeroshot.py --model /path/to/Qwen2-Audio-7B-Instruct --device cuda --dtype bf16

Both paths run in the same process on the same clips, prompt and labels, after one warm-up pass:

``once``      ``backend.encode`` once per batch of clips, then ``score_labels`` for all K labels (the
              prompt prefix decoded once per clip, its KV cache shared by the K label continuations);
``per-label`` for each label, ``backend.encode`` again and ``score_labels`` for that label alone (what a
              naive scorer does: one full forward per (clip, label)).

Prints both times, the ratio per-label / once, and checks the two give the same scores. The packaged
``whisper-base`` converts offline; other models need local weights.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--task", default="spoken_word")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--window", default="full", choices=["full", "trimmed"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=1, help="timed repetitions of each path (best is kept)")
    ap.add_argument(
        "--cache", type=Path, default=None, help="speechprobe cache dir (synthetic clips, converted weights)"
    )
    args = ap.parse_args(argv)

    import torch

    from speechprobe.cache import cache_root
    from speechprobe.data.audio import resample
    from speechprobe.data.resolve import open_task
    from speechprobe.zeroshot import load_backend, score_labels
    from speechprobe.zeroshot.prompts import BUILTIN

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    task, source = open_task(args.task, cache_root(args.cache), seed=0, n_per_class=max(1, -(-args.clips // 8)))
    clips = []
    for clip in source:
        clips.append(clip)
        if len(clips) == args.clips:
            break
    labels = list(task.labels)
    backend = load_backend(
        args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size, window=args.window
    )
    audios = [resample(c.audio, c.sample_rate, backend.sample_rate) for c in clips]
    prompt = BUILTIN["choose"].render(task.name, labels)
    batches = [
        list(range(i, min(i + backend.batch_size, len(audios)))) for i in range(0, len(audios), backend.batch_size)
    ]

    def sync() -> None:
        if backend.device.type == "cuda":
            torch.cuda.synchronize()

    def once() -> np.ndarray:
        out = []
        for rows in batches:
            enc = backend.encode([audios[i] for i in rows])
            out.append(score_labels(backend, enc, [prompt] * len(rows), labels).raw)
        sync()
        return np.concatenate(out)

    def per_label() -> np.ndarray:
        out = []
        for rows in batches:
            cols = []
            for label in labels:
                enc = backend.encode([audios[i] for i in rows])
                cols.append(score_labels(backend, enc, [prompt] * len(rows), [label]).raw[:, 0])
            out.append(np.stack(cols, axis=1))
        sync()
        return np.concatenate(out)

    def timed(fn) -> tuple[float, np.ndarray]:
        best, result = float("inf"), None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - t0)
        return best, result

    with torch.inference_mode():
        score_labels(backend, backend.encode(audios[:1]), [prompt], labels)  # warm-up
        t_once, a = timed(once)
        t_each, b = timed(per_label)
    diff = float(np.max(np.abs(a - b)))
    same = bool((a.argmax(1) == b.argmax(1)).all())
    dev = torch.cuda.get_device_name() if backend.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"model {backend.name} ({args.window} window), task {task.name}: {len(clips)} clips x {len(labels)} labels, "
        f"batch {backend.batch_size}, device {dev}"
    )
    print(f"encode once, score all labels : {t_once:8.3f} s  ({1000 * t_once / len(clips):.1f} ms/clip)")
    print(f"re-encode for every label     : {t_each:8.3f} s  ({1000 * t_each / len(clips):.1f} ms/clip)")
    print(f"ratio (re-encode / once)      : {t_each / t_once:8.2f}x")
    print(f"same scores: max |diff| = {diff:.2e}, same argmax: {same}")
    return 0 if same and diff < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
