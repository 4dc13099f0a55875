"""Acoustic-cue extraction speed against real time and against a naive per-clip loop; with ``--demo``,
also what the cue analyses (cue extraction, cue probes, erasure, all-layers reference) add to the demo.

The naive loop is what a user writes with Praat and librosa, one clip at a time, each cue from its own
analysis: ``To Pitch`` for F0, voicing and rate, ``To Harmonicity (cc)`` for HNR, ``To PointProcess
(periodic, cc)`` (a second pitch analysis inside) for jitter and shimmer, librosa RMS and STFT for
energy and tilt. Ours is the ``cues`` adapter: one pitch analysis feeds F0, voicing, rate and HNR, the
point process reuses it, and the clips of a batch run in parallel threads. Both on the same synthetic
suite clips (eSpeak NG), in this run.

    python benchmarks/bench_cues.py [--clips 160] [--demo]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from speechprobe.data.synthetic import generate_task
from speechprobe.models.acoustic_cues import CUES, AcousticCuesAdapter, split_cues

SR = 16000


def suite_clips(root: Path, n: int) -> list[np.ndarray]:
    """``n`` clips from the emotion, stress and gender tasks (1.5-4 s of speech each)."""
    audio = []
    for task in ("emotion", "stress", "gender"):
        manifest = generate_task(task, root / task, n_per_class=14, seed=0)
        audio += [sf.read(manifest.parent / p, dtype="float32")[0] for p in pd.read_csv(manifest)["path"]]
    return audio[:n]


def naive_cues(y: np.ndarray) -> dict[str, float]:
    """Each cue from its own analysis, the straightforward way."""
    import librosa
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(y.astype(np.float64), SR)
    f0 = sound.to_pitch(time_step=0.01, pitch_floor=75, pitch_ceiling=600).selected_array["frequency"]
    voiced = f0[f0 > 0]
    harm = sound.to_harmonicity_cc()
    points = call(sound, "To PointProcess (periodic, cc)", 75, 600)
    rms = librosa.feature.rms(y=y, frame_length=512, hop_length=160)[0]
    spectrum = np.abs(librosa.stft(y, n_fft=512, hop_length=160)) ** 2
    return {
        "f0_mean": float(np.mean(12 * np.log2(voiced / 100))) if len(voiced) else float("nan"),
        "hnr": float(harm.values[harm.values > -199].mean()),
        "jitter": call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3),
        "shimmer": call([sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6),
        "energy_mean": float(np.mean(20 * np.log10(np.maximum(rms, 1e-12)))),
        "tilt_input": float(spectrum.mean()),
    }


def bench_extraction(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        audio = suite_clips(Path(tmp), n)
    seconds = sum(len(y) for y in audio) / SR
    print(f"{len(audio)} clips, {seconds:.1f} s of audio, {os.cpu_count()} CPU cores")
    naive_cues(audio[0])  # warm the imports of both paths
    adapter = AcousticCuesAdapter()
    adapter.forward(audio[:2])
    t0 = time.perf_counter()
    naive = [naive_cues(y) for y in audio]
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = split_cues(np.concatenate([adapter.forward(audio[i : i + 32]) for i in range(0, len(audio), 32)]))
    t_ours = time.perf_counter() - t0
    print(f"naive loop : {t_naive:6.2f} s  {seconds / t_naive:6.1f}x real time")
    print(f"ours       : {t_ours:6.2f} s  {seconds / t_ours:6.1f}x real time  ({t_naive / t_ours:.2f}x naive)")
    for cue in ("f0_mean", "hnr", "jitter", "shimmer"):
        a, b = ours[:, CUES.index(cue)], np.array([c[cue] for c in naive], dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        print(f"  {cue:8s} ours vs naive: r = {np.corrcoef(a[ok], b[ok])[0, 1]:.3f} over {ok.sum()} clips")


def bench_demo() -> None:
    """``speechprobe demo`` from an empty cache; the cue analyses' share of its wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        env = {**os.environ, "SPEECHPROBE_CACHE": str(Path(tmp) / "cache")}
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "speechprobe.cli", "demo", "--out", str(out), "--no-progress"]
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        total = time.perf_counter() - t0
        manifest = json.loads((out / "manifest.json").read_text())
        cues = sum(v["seconds"] for k, v in manifest["extraction"].items() if k.startswith("cues/"))
        parts = {"cue extraction": cues}
        for name in ("cues", "erasure", "layer_weights"):
            parts[name] = json.loads((out / "analyses" / f"{name}.json").read_text())["seconds"]
    ours = sum(parts.values())
    print(f"demo from an empty cache: {total:.1f} s wall, of which the cue analyses {ours:.1f} s:")
    for name, s in parts.items():
        print(f"  {name:15s} {s:6.1f} s")
    print(f"added to the demo without them: {ours / (total - ours):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=160)
    parser.add_argument("--demo", action="store_true", help="also time the analyses inside `speechprobe demo`")
    args = parser.parse_args()
    bench_extraction(args.clips)
    if args.demo:
        bench_demo()


if __name__ == "__main__":
    main()
