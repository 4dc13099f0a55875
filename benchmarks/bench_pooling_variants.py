"""Cost of ``--pooling-variants``: extraction with every variant against the mean alone, and the analysis's
probing against the run's own probing, measured in the same run.

    PYTHONPATH=src python benchmarks/bench_pooling_variants.py [--model whisper-tiny.en] [--clips 48] [--rounds 3]

1. Extraction. The same clips (seeded noise with a tone, 1-4 s) through ``features.extract`` into a fresh
   feature store, alternating per round: the mean alone (one space, what a run stores) and the variants
   request (mean, first:k, last:k, max: four spaces from one forward, what ``--pooling-variants`` stores).
   Printed: median wall and CPU seconds of each, their ratio (variants / mean) and each round's ratio; then
   one batch of 8 clips through the adapter's forward alone (no store, one torch thread, 12 alternations):
   the pooling's own cost, apart from writing 4 items per clip.
2. Probing. On the stored features (two classes), the run's probing (``probe_layers`` on the mean, the run's
   default probes knn and mlp, 5 folds) against the analysis's (the four other poolings: first, last, edges,
   max; the mean's scores are results.csv's), with every probe of the run (as it first did) and with the
   primary probe alone (knn, as it does now). Printed: seconds of each and their ratios.

Extraction and forwards are timed in wall and CPU seconds (this process's threads): on a shared machine the
CPU ratio is the steadier one (a wait for the disk, e.g. the store's fsync, shows in wall time only). The load
average before and after is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

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
    t, c = time.perf_counter(), time.process_time()
    extract(adapter, clips, spaces if len(spaces) > 1 else spaces["mean"])
    return (time.perf_counter() - t, time.process_time() - c), spaces


def forwards(adapter, clips: list[Clip], spec: str, reps: int = 12) -> tuple[list[float], list[float]]:
    """CPU seconds of one batch (8 clips) through the adapter's forward alone (no store), with one torch thread,
    alternating the mean and the variants request ``reps`` times: the pooling's own cost."""
    audio, times = [c.audio for c in clips[:8]], {"mean": [], spec: []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i in range(reps):
            for pooling in ("mean", spec) if i % 2 else (spec, "mean"):
                c = time.process_time()
                adapter.forward(audio, pooling)
                times[pooling].append(time.process_time() - c)
    finally:
        torch.set_num_threads(threads)
    return times["mean"], times[spec]


def medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def probing(features: np.ndarray, labels: list[str], probes=("knn", "mlp")) -> float:
    """CPU seconds of ``probes`` (the run's defaults: knn, mlp) on 5 folds of ``features``."""
    c = time.process_time()
    probe_layers(features, labels, None, probes, 5, 0, scorers={"macro_f1": PROBE_SCORERS["macro_f1"]})
    return time.process_time() - c


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
    times: dict[str, list[tuple[float, float]]] = {"mean": [], "variants": []}
    spaces: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in ("mean", "variants") if r % 2 == 0 else ("variants", "mean"):
                poolings = ["mean"] if mode == "mean" else variants
                seconds, filled = extraction(adapter, clips, poolings, Path(tmp) / f"{r}{mode}")
                times[mode].append(seconds)
                spaces = filled if mode == "variants" else spaces
        (mean_w, mean_c), (var_w, var_c) = medians(times["mean"]), medians(times["variants"])
        print(f"{args.model}, {len(clips)} clips ({audio:.0f} s of audio), k = {k} frames, {args.rounds} rounds")
        print(f"extraction, mean alone: {mean_w:.2f} s wall, {mean_c:.2f} s CPU")
        print(f"extraction, mean + first, last, max from one forward: {var_w:.2f} s wall, {var_c:.2f} s CPU")
        print(f"extraction ratio (variants / mean): {var_w / mean_w:.3f} wall, {var_c / mean_c:.3f} CPU")
        rounds = ", ".join(f"{v[0] / m[0]:.2f}" for m, v in zip(times["mean"], times["variants"]))
        print(f"  each round's wall ratio: {rounds}")
        fwd_m, fwd_v = (statistics.median(t) for t in forwards(adapter, clips, variants_spec(variants)))
        print(f"one batch of 8, forward alone, one thread: mean {fwd_m:.3f} s CPU, variants {fwd_v:.3f} s CPU")
        print(f"forward ratio (variants / mean): {fwd_v / fwd_m:.3f} (the pooling's own cost; the rest is the store)")
        hashes = [c.content_hash for c in clips]
        feats = {p: s.gather(hashes) for p, s in spaces.items()}
        feats["edges"] = np.concatenate([feats[variants[1]], feats[variants[2]]], axis=-1)
        labels = [c.label for c in clips]
        run_s = probing(feats["mean"], labels)
        extra = (variants[1], variants[2], "edges", "max")
        every_s = sum(probing(feats[p], labels) for p in extra)
        primary_s = sum(probing(feats[p], labels, ("knn",)) for p in extra)
    print(f"probing (5 folds), the run's knn and mlp on the mean: {run_s:.2f} s CPU; the analysis's 4 poolings")
    print(f"  with every probe of the run (before): {every_s:.2f} s CPU, ratio to the run {every_s / run_s:.2f}")
    print(f"  with the primary probe, knn (now): {primary_s:.2f} s CPU, ratio to the run {primary_s / run_s:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
