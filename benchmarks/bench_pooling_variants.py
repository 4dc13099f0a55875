"""Cost of ``--pooling-variants``: extraction with every variant against the mean alone, and the analysis's
probing against the run's own probing, measured in the same run.

    PYTHONPATH=src python benchmarks/bench_pooling_variants.py [--model whisper-tiny.en] [--clips 48] [--rounds 3]

1. Extraction. The same clips (seeded noise with a tone, 1-4 s) through ``features.extract`` into a fresh
   feature store, alternating per round: the mean alone (one space, what a run stores) and the variants
   request (mean, first:k, last:k, max: four spaces from one forward, what ``--pooling-variants`` stores).
   Printed: median wall seconds of each and their ratio (variants / mean), each round's ratio, and the same
   for the adapter's forwards alone (no store): the pooling's own cost, apart from writing 4 items per clip.
2. Probing. On the stored features (two classes), the run's probing (``probe_layers`` on the mean, the run's
   default probes knn and mlp, 5 folds) against the analysis's (the four other poolings: first, last, edges,
   max; the mean's scores are results.csv's). Printed: seconds of each and their ratio.

The load average before and after is printed: on a shared machine the ratios move less than the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from speechprobe.data.clip import Clip
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.models.pooling import variant_name, variants_spec
from speechprobe.models.registry import load_model
from speechprobe.pooling_stage import EDGE_MS, edge_frames
from speechprobe.probes import PROBE_SCORERS, probe_layers


def make_clips(n: int, seed: int = 0) -> list[Clip]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sr, seconds = 16000, rng.uniform(1.0, 4.0)
        t = np.arange(int(sr * seconds)) / sr
        y = 0.2 * np.sin(2 * np.pi * (150 + 100 * (i % 2)) * t) + 0.05 * rng.standard_normal(len(t))
        out.append(Clip(f"c{i}", y.astype(np.float32), sr, "ab"[i % 2]))
    return out


def extraction(adapter, clips: list[Clip], poolings: list[str], root: Path) -> tuple[float, dict]:
    store = FeatureStore(root)
    spaces = {
        p: store.space(adapter.name, adapter.info.revision, {**adapter.options(), "pooling": p}) for p in poolings
    }
    t = time.perf_counter()
    extract(adapter, clips, spaces if len(spaces) > 1 else spaces["mean"])
    return time.perf_counter() - t, spaces


def forwards(adapter, clips: list[Clip], pooling: str) -> float:
    """Seconds of the adapter's forwards alone (batches of 8, no store): the pooling's own cost."""
    audio = [c.audio for c in clips]
    t = time.perf_counter()
    for i in range(0, len(audio), 8):
        adapter.forward(audio[i : i + 8], pooling)
    return time.perf_counter() - t


def probing(features: np.ndarray, labels: list[str]) -> float:
    t = time.perf_counter()
    probe_layers(features, labels, None, ("knn", "mlp"), 5, 0, scorers={"macro_f1": PROBE_SCORERS["macro_f1"]})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="whisper-tiny.en")
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    adapter = load_model(args.model, window="trimmed")
    k = edge_frames(EDGE_MS, adapter.info.frame_rate)
    variants = ["mean", variant_name("first", k), variant_name("last", k), "max"]
    clips = make_clips(args.clips)
    audio = sum(c.duration for c in clips)
    times: dict[str, list[float]] = {"mean": [], "variants": [], "forward mean": [], "forward variants": []}
    spaces: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ("mean", "variants") if r % 2 == 0 else ("variants", "mean")
            for mode in order:
                seconds, filled = extraction(
                    adapter, clips, ["mean"] if mode == "mean" else variants, Path(tmp) / f"{r}{mode}"
                )
                times[mode].append(seconds)
                spaces = filled if mode == "variants" else spaces
                spec = "mean" if mode == "mean" else variants_spec(variants)
                times[f"forward {mode}"].append(forwards(adapter, clips, spec))
        mean_s, var_s = statistics.median(times["mean"]), statistics.median(times["variants"])
        print(f"{args.model}, {len(clips)} clips ({audio:.0f} s of audio), k = {k} frames, {args.rounds} rounds")
        print(f"extraction, mean alone: {mean_s:.2f} s; mean + first, last, max from one forward: {var_s:.2f} s")
        print(f"extraction ratio (variants / mean): {var_s / mean_s:.3f}")
        rounds = ", ".join(f"{v / m:.2f}" for m, v in zip(times["mean"], times["variants"]))
        print(f"  each round's ratio: {rounds}")
        fwd_m, fwd_v = statistics.median(times["forward mean"]), statistics.median(times["forward variants"])
        print(f"forwards alone (no store), mean: {fwd_m:.2f} s; variants request: {fwd_v:.2f} s")
        print(f"forward ratio (variants / mean): {fwd_v / fwd_m:.3f}; the rest of the extraction ratio is the store")
        hashes = [c.content_hash for c in clips]
        feats = {p: s.gather(hashes) for p, s in spaces.items()}
        feats["edges"] = np.concatenate([feats[variants[1]], feats[variants[2]]], axis=-1)
        labels = [c.label for c in clips]
        run_s = probing(feats["mean"], labels)
        extra_s = sum(probing(feats[p], labels) for p in (variants[1], variants[2], "edges", "max"))
    print(
        f"probing (knn, mlp, 5 folds), the run's on the mean: {run_s:.2f} s; the analysis's 4 poolings: {extra_s:.2f} s"
    )
    print(f"probing ratio (analysis / run): {extra_s / run_s:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
