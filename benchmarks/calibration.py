"""False-positive rate of the best-layer test on signal-free data: the old test (the best layer tested
alone) against the selection-aware test (every shuffle re-runs the selection), at alpha = 0.05.

    python benchmarks/calibration.py                      # 200 simulated + 200 real-feature null datasets
    python benchmarks/calibration.py --datasets 40 --no-real
    python benchmarks/calibration.py --speakers-only --datasets 400 --permutations 1000

Null datasets (no link between features and labels, so every rejection is a false positive):

simulated  13 layers x 64 dims, 200 clips, 5 balanced classes, 20 speakers (speaker offsets in every
           layer); layers correlated like a network's (each layer = 0.9 x the previous + noise). Half the
           datasets have grouped folds (labels vary within speakers: within-group shuffles), half not.
real       pooled whisper-tiny.en (5 layers) and whisper-base (7 layers) features of the synthetic suite
           (the demo's tasks, trimmed window, read from or extracted into the feature store), with labels
           drawn independently of the audio: clip-level (each task's labels shuffled over its clips,
           grouped folds by voice) or voice-level (each of the 16 voices of gender / speaker_count gets
           one of two labels, 8 voices each).

speakers  speaker-level labels: 10 speakers x 10 clips, 7 layers x 16 dims with strong speaker offsets in
           every layer; each speaker gets one of two labels at random (5 speakers each), independent of
           the features; grouped 5-fold folds, then leave-one-speaker-out (--speaker-cv). The unit of
           inference is the speaker: whole speakers swap labels within their test fold (2^5 = 32
           labellings with 5 folds of two speakers), or among all speakers under leave-one-speaker-out
           (C(10, 5) = 252), every labelling enumerated when --permutations is at least that. The clip-level
           test on the same data (labels shuffled over clips within test folds, the null that ignores
           the speaker) is printed beside it (k-fold only: a leave-one-speaker-out test fold holds
           one speaker, so clip shuffles within it change nothing).

Both tests use the same folds (the probe runner's), the same restricted shuffles and the KNN probe;
the old p is the best layer's own per-layer p, the new p the selection-aware one. Prints each rate
with a Wilson 95 % interval.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from speechprobe.analysis import selection_test

ALPHA = 0.05
DEMO_TASKS = ("accent", "stress", "speaker_count", "emotion", "gender")
REAL_MODELS = ("whisper-tiny.en", "whisper-base")


def simulated(seed: int, grouped: bool, n_layers: int = 13, dim: int = 64, n: int = 200):
    rng = np.random.default_rng(seed)
    y = np.array([f"c{i}" for i in range(5)])[np.arange(n) % 5]
    rng.shuffle(y)
    speakers = np.arange(n) % 20
    layers = [rng.normal(size=(n, dim))]
    for _ in range(n_layers - 1):
        layers.append(0.9 * layers[-1] + math.sqrt(1 - 0.81) * rng.normal(size=(n, dim)))
    offsets = rng.normal(size=(20, n_layers, dim)) * 0.5
    features = np.stack(layers, axis=1) + offsets[speakers]
    return features.astype(np.float32), y, np.array([f"s{s}" for s in speakers]) if grouped else None


def speaker_level(seed: int, n_speakers: int = 10, per_speaker: int = 10, n_layers: int = 7, dim: int = 16):
    """Features with speaker structure and labels assigned per speaker at random (half the speakers each)."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(n_speakers), per_speaker)
    layers = [rng.normal(size=(len(speakers), dim))]
    for _ in range(n_layers - 1):
        layers.append(0.9 * layers[-1] + math.sqrt(1 - 0.81) * rng.normal(size=(len(speakers), dim)))
    offsets = rng.normal(size=(n_speakers, n_layers, dim)) * 1.5  # speakers are easy to tell apart
    features = (np.stack(layers, axis=1) + offsets[speakers]).astype(np.float32)
    side = np.array(["x", "y"])[rng.permutation(np.arange(n_speakers) % 2)]
    return features, side[speakers], np.array([f"s{s}" for s in speakers])


def speaker_rates(count: int, permutations: int, plans: tuple[str, ...] = ("kfold", "logo")) -> None:
    """False-positive rates of the speaker-unit test and of the clip-level test on speaker-level labels,
    with grouped 5-fold folds and with leave-one-speaker-out (where clip shuffles within a one-speaker test
    fold change nothing, so only the speaker-unit test is run)."""
    from speechprobe.probes import make_cv

    for cv in plans:
        t0 = time.perf_counter()
        rows, exact, floors = [], 0, []
        for i in range(count):
            feats, y, groups = speaker_level(i)
            folds = make_cv(y, groups, 5, i, 1, cv).folds
            test = selection_test(feats, y, groups, ("knn",), permutations, folds=folds, seed=i)
            clip = (
                selection_test(feats, y, None, ("knn",), permutations, folds=folds, seed=i) if cv == "kfold" else test
            )
            rows.append((clip.p_value if cv == "kfold" else np.nan, test.p_value))
            exact += test.exact
            floors.append(test.min_p)
        print(
            f"speaker-level labels, --cv {cv}: {count} datasets, 10 speakers, {permutations} shuffles, "
            f"{exact} exact tests, smallest attainable p {np.median(floors):.4f} (median)"
        )
        for label, idx in (("clip-level shuffles", 0), ("speaker unit (new)", 1))[cv != "kfold" :]:
            k = sum(r[idx] <= ALPHA for r in rows)
            lo, hi = wilson(k, count)
            name = f"speaker-level, {cv}, best layer"
            print(f"{name:<34} {label:<24} {k:>4}/{count:<4} = {k / count:.3f}  [{lo:.3f}, {hi:.3f}]")
        print(f"({time.perf_counter() - t0:.0f} s)")


def real_features(cache: Path | None) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(model, task) -> (features, real labels, voices), from the feature store (extracted if missing)."""
    from speechprobe.cache import cache_root
    from speechprobe.config import RunConfig
    from speechprobe.features.store import FeatureStore
    from speechprobe.pipeline import _space, run_extract

    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig.of(
            models=list(REAL_MODELS),
            tasks=list(DEMO_TASKS),
            out=Path(tmp) / "run",
            window="trimmed",
            baselines=[],
            cache=cache,
            progress=False,
        )
        clips, state = run_extract(cfg)
    store = FeatureStore(cache_root(cache) / "features")
    out = {}
    for model, info in state.models.items():
        space = _space(store, model, info, cfg.pooling)
        for task, metas in clips.items():
            feats = space.gather([c.content_hash for c in metas])
            out[model, task] = (
                np.asarray(feats),
                np.array([c.label for c in metas]),
                np.array([c.group or "" for c in metas]),
            )
    return out


def real_nulls(data: dict, count: int, seed: int):
    """``count`` null datasets from real features: (name, features, labels, groups)."""
    rng = np.random.default_rng(seed)
    keys = sorted(data)
    voice_tasks = [k for k in keys if len(np.unique(data[k][2])) >= 16]
    for i in range(count):
        if i % 2 == 0:  # clip-level labels, independent of the audio; folds grouped by voice
            key = keys[(i // 2) % len(keys)]
            feats, labels, voices = data[key]
            yield f"clip-level {key[0]} {key[1]}", feats, rng.permutation(labels), voices
        else:  # voice-level: each voice one of two labels, 8 voices each
            key = voice_tasks[(i // 2) % len(voice_tasks)]
            feats, _, voices = data[key]
            names = np.unique(voices)
            side = np.array(["x", "y"])[rng.permutation(np.arange(len(names)) % 2)]
            yield f"voice-level {key[0]} {key[1]}", feats, side[np.searchsorted(names, voices)], voices


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rates(name: str, rows: list[tuple[float, float]]) -> None:
    n = len(rows)
    for label, idx in (("old: best layer alone", 0), ("new: selection-aware", 1)):
        k = sum(r[idx] <= ALPHA for r in rows)
        lo, hi = wilson(k, n)
        print(f"{name:<34} {label:<24} {k:>4}/{n:<4} = {k / n:.3f}  [{lo:.3f}, {hi:.3f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=200, help="null datasets per kind (simulated, real)")
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--no-real", action="store_true", help="skip the real-feature nulls")
    parser.add_argument("--speakers-only", action="store_true", help="only the speaker-level-label simulation")
    parser.add_argument("--speaker-cv", default="kfold,logo", help="plans of the speaker-level simulation")
    parser.add_argument("--cache", type=Path, default=None, help="feature store (default: the user cache)")
    args = parser.parse_args()
    if args.speakers_only:
        speaker_rates(args.datasets, args.permutations, tuple(args.speaker_cv.split(",")))
        return
    t0 = time.perf_counter()
    sim = []
    for i in range(args.datasets):
        feats, y, groups = simulated(i, grouped=bool(i % 2))
        test = selection_test(feats, y, groups, ("knn",), args.permutations, 5, seed=i)
        sim.append((float(test.layer_p[test.best]), test.p_value))
    print(f"alpha = {ALPHA}, {args.permutations} shuffles per dataset, KNN probe, 5 folds")
    rates("simulated, 13 layers (all)", sim)
    rates("simulated, grouped folds", sim[1::2])
    rates("simulated, ungrouped folds", sim[::2])
    print(f"({time.perf_counter() - t0:.0f} s)")
    speaker_rates(args.datasets, args.permutations)
    if args.no_real:
        return
    t0 = time.perf_counter()
    data = real_features(args.cache)
    real = {"clip": [], "voice": []}
    for i, (name, feats, y, groups) in enumerate(real_nulls(data, args.datasets, seed=1)):
        test = selection_test(feats, y, groups, ("knn",), args.permutations, 5, seed=1000 + i)
        real[name.split("-")[0]].append((float(test.layer_p[test.best]), test.p_value))
    rates("real whisper features (all)", real["clip"] + real["voice"])
    rates("real, clip-level labels", real["clip"])
    rates("real, voice-level labels", real["voice"])
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
