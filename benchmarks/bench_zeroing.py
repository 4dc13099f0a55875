"""Value zeroing per clip: the exact path against the fast path, without and with the folded first linear.

    PYTHONPATH=src python benchmarks/bench_zeroing.py                         # whisper-tiny.en, whisper-base
    PYTHONPATH=src python benchmarks/bench_zeroing.py --seconds 3 --repeats 5

One clip of noise-modulated tones (``--seconds`` long) through each model's blocks (one torch thread, as the
analysis runs), then every block's value-zeroing scores by three paths, each timed ``--repeats`` times (the
median is printed): the exact path (the block called again with ``v_j`` zeroed), the fast path with the
feed-forward's first linear run on the ``n²`` rows, and the fast path with it folded (the default). Printed:
CPU seconds per clip and the ratio to the exact path, and the largest difference of each path's
``mixing_self`` and ``mixing_distance_ms`` from the exact one's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    import torch

    from speechprobe.analysis.mixing import clip_mixing
    from speechprobe.models.attention import encoder_of
    from speechprobe.models.registry import load_model
    from speechprobe.parallel import single_threaded

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="whisper-tiny.en,whisper-base")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * a.seconds)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(len(t))
    audio = audio.astype(np.float32)
    for name in a.models.split(","):
        adapter = load_model(name, window="trimmed")
        encoder, rate = encoder_of(adapter), adapter.info.frame_rate
        folded = encoder.ffn_in
        paths = {"exact": (True, folded), "fast, first linear run": (False, None), "fast, folded": (False, folded)}
        results = {}
        with single_threaded(), torch.no_grad():
            for label, (exact, ffn_in) in paths.items():
                encoder.ffn_in, times = ffn_in, []
                for _ in range(a.repeats):
                    c = time.process_time()
                    values = clip_mixing(encoder, audio, rate, exact=exact)
                    times.append(time.process_time() - c)
                results[label] = (float(np.median(times)), values)
        base_t, base_v = results["exact"]
        print(f"{name}, a {a.seconds:g} s clip ({encoder.frames(len(audio))} frames), median of {a.repeats}:")
        for label, (cpu, values) in results.items():
            diff = np.abs(values[:, :2] - base_v[:, :2]).max(axis=0)
            print(f"  {label:24s} {cpu:6.2f} s CPU, ratio {cpu / base_t:.2f}; max |diff| self {diff[0]:.1e}, "
                  f"distance {diff[1]:.1e} ms")  # fmt: skip


if __name__ == "__main__":
    main()
