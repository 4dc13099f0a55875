"""What each hand-crafted baseline costs to extract, against mfcc and against a naive openSMILE loop, on
the demo's clips; with ``--demo``, what egemaps + prosody add to a demo-configured run.

Extraction: every baseline's adapter over the same clips (the demo's five synthetic tasks, 992 clips of
eSpeak NG speech, 16 kHz), in batches of 32 as the extraction driver hands them over, in this run. The
naive openSMILE loop is what a user writes: ``opensmile.Smile(eGeMAPSv02).process_signal`` one clip at a
time; ours (``egemaps``) runs the clips of a batch in threads (the native call releases the GIL).

``--demo``: two ``speechprobe run`` calls with the demo's settings (its tasks, trimmed window, KNN,
5 × 5 folds, cue analyses on the first partition with erasure, every other analysis) and no Whisper
model, each from an empty cache: the demo's old default baselines (mfcc, librosa, duration, channel,
loudness), then the same plus egemaps and prosody. The difference is what the two add to the demo
(extraction, probes, permutation tests, cue and layer analyses; prosody's stored items also serve as
the cue analyses' targets, so the cues are no longer computed on their own).

    python benchmarks/bench_baselines.py [--clips 992] [--demo]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from speechprobe.data.synthetic import generate_task
from speechprobe.models.registry import load_model

DEMO_TASKS = ("accent", "stress", "speaker_count", "emotion", "gender")  # cli.run_commands.DEMO_TASKS
OLD_DEFAULTS = ["mfcc", "librosa", "duration", "channel", "loudness"]
BASELINES = ("mfcc", "librosa", "egemaps", "prosody", "compare2016", "loudness")
BATCH = 32
SR = 16000
FACTS = {"sample_rate": SR, "channels": 1, "clipped_fraction": 0.0, "dc_offset": 0.0}  # a mono 16 kHz source


def demo_clips(root: Path, n: int) -> list[np.ndarray]:
    """The first ``n`` clips of the demo's five tasks (each task's default size, seed 0)."""
    audio = []
    for task in DEMO_TASKS:
        manifest = generate_task(task, root / task, seed=0)
        audio += [sf.read(manifest.parent / p, dtype="float32")[0] for p in pd.read_csv(manifest)["path"]]
    return audio[:n]


def timed(fn, audio: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(audio), BATCH):
        fn(audio[i : i + BATCH])
    return time.perf_counter() - t0


def bench_extraction(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        audio = demo_clips(Path(tmp), n)
    hours = sum(len(y) for y in audio) / SR / 3600
    load = os.getloadavg()[0]
    print(f"{len(audio)} clips, {hours * 3600:.0f} s of audio, {os.cpu_count()} CPU cores, load {load:.1f}")
    seconds = {}
    for name in BASELINES:
        adapter = load_model(name)
        adapter.forward_clips(audio[:2], [FACTS] * 2)  # warm-up
        seconds[name] = timed(lambda b, a=adapter: a.forward_clips(b, [FACTS] * len(b)), audio)
    naive = _naive_egemaps(audio)
    print(f"\n{'baseline':<12} {'seconds':>8} {'s / 100 clips':>14} {'s / clip-hour':>14} {'x mfcc':>7}")
    for name, s in seconds.items():
        print(f"{name:<12} {s:8.1f} {100 * s / len(audio):14.2f} {s / hours:14.0f} {s / seconds['mfcc']:7.2f}")
    print(
        f"{'naive eGeMAPS':<12} {naive:8.1f} {100 * naive / len(audio):14.2f} {naive / hours:14.0f} "
        f"{naive / seconds['mfcc']:7.2f}"
    )
    print(f"\negemaps (threads) vs the naive one-clip loop: {naive / seconds['egemaps']:.2f}x")
    added = seconds["egemaps"] + seconds["prosody"]
    print(f"egemaps + prosody add {added:.1f} s of extraction for these clips ({added / seconds['mfcc']:.1f}x mfcc)")


def _naive_egemaps(audio: list[np.ndarray]) -> float:
    import opensmile

    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    smile.process_signal(audio[0], SR)
    t0 = time.perf_counter()
    for y in audio:
        smile.process_signal(y, SR).to_numpy()
    return time.perf_counter() - t0


def bench_width(n: int = 288) -> None:
    """The demo's probing (KNN, 5 × 5 grouped folds, permutation-free) of one task of ``n`` clips at each
    baseline's width: the cost that grows with the number of features, whatever their values."""
    from speechprobe.probes import cross_validate_layers

    rng = np.random.default_rng(0)
    labels = [str(i % 4) for i in range(n)]
    groups = [f"v{i % 24}" for i in range(n)]
    cross_validate_layers(rng.standard_normal((n, 1, 8)).astype(np.float32), labels, groups, ["knn"], 5, 0)  # warm-up
    print(f"\nprobing one task of {n} clips (knn, 5 x 5 grouped folds) by width:")
    for name, width in (("mfcc", 60), ("egemaps", 88), ("compare2016", 6373)):
        feats = rng.standard_normal((n, 1, width)).astype(np.float32)
        t0 = time.perf_counter()
        cross_validate_layers(feats, labels, groups, ["knn"], 5, 0, repeats=5)
        print(f"  {name:<12} {width:5d} features: {time.perf_counter() - t0:6.2f} s")


def demo_run(baselines: list[str], out: Path, cache: Path) -> dict:
    """A demo-configured run without the Whisper models; wall seconds and the manifest's phase seconds."""
    from speechprobe.config import RunConfig
    from speechprobe.pipeline import run

    cfg = RunConfig.of(
        models=[],
        baselines=baselines,
        tasks=list(DEMO_TASKS),
        out=out,
        window="trimmed",
        probes=["knn"],
        repeats=5,
        cue_repeats=1,
        n_jobs=2,
        erasure=True,
        cache=cache,
        progress=False,
    )
    t0 = time.perf_counter()
    run(cfg)
    wall = time.perf_counter() - t0
    manifest = json.loads((out / "manifest.json").read_text())
    extraction = {}
    for key, rec in manifest["extraction"].items():
        extraction[key.split("/")[0]] = extraction.get(key.split("/")[0], 0.0) + rec["seconds"]
    probing = {}
    for key, rec in (manifest.get("probing") or {}).items():
        probing[key.split("/")[0]] = probing.get(key.split("/")[0], 0.0) + rec["seconds"]
    return {"wall": wall, "extraction": extraction, "probing": probing}


def bench_demo() -> None:
    runs = {}
    for label, names in (("old defaults", OLD_DEFAULTS), ("+ egemaps, prosody", OLD_DEFAULTS + ["egemaps", "prosody"])):
        with tempfile.TemporaryDirectory() as tmp:
            runs[label] = demo_run(names, Path(tmp) / "run", Path(tmp) / "cache")
        r = runs[label]
        ext = ", ".join(f"{k} {v:.1f}" for k, v in r["extraction"].items())
        probe = ", ".join(f"{k} {v:.1f}" for k, v in r["probing"].items())
        load = os.getloadavg()[0]
        print(f"\n{label}: {r['wall']:.1f} s wall (load {load:.1f})\n  extraction s: {ext}\n  probing s: {probe}")
    a, b = runs["old defaults"], runs["+ egemaps, prosody"]
    print(
        f"\negemaps + prosody add {b['wall'] - a['wall']:.1f} s to a demo-configured run without the Whisper models "
        f"({a['wall']:.1f} -> {b['wall']:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=992)
    parser.add_argument("--demo", action="store_true", help="also the A/B of two demo-configured runs")
    args = parser.parse_args()
    bench_extraction(args.clips)
    bench_width()
    if args.demo:
        bench_demo()


if __name__ == "__main__":
    main()
