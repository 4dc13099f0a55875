"""Cost of the uncertainty work, against naive baselines measured in the same run.

    python benchmarks/bench_uncertainty.py                      # defaults: 400 clips x 13 layers, 2 probes
    python benchmarks/bench_uncertainty.py --clips 2000 --layers 33 --boot 1000

Two measurements:

bootstrap   ``bootstrap_table`` (all resamples, probes and layers as weighted count matrix products)
            against the naive loop: for every resample, draw the clips (same clustered, stratified
            weights), then ``sklearn.metrics.f1_score`` per repeat, probe and layer on the repeated
            indices. Both at ``--naive-boot`` resamples; the vectorised one also at ``--boot``. Checks
            that both give the same scores.
probing     ``cross_validate_layers`` in all, and the part the new work adds: the main-process scoring
            of the stored predictions with every scorer (per-fold macro-F1 and accuracy, the out-of-fold
            macro-F1, NMI and AMI) against the scorers of earlier versions (macro-F1, accuracy, NMI), on
            the same predictions (rounds alternate the two), and writing the predictions file. Timing
            two whole probing runs against each other is useless on a shared machine: the cells' load
            noise (±20 %) dwarfs the scoring.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from speechprobe.analysis.bootstrap import bootstrap_scores, bootstrap_table, resample_weights
from speechprobe.probes import (
    CLUSTER_SCORERS,
    OOF_SCORERS,
    PROBE_SCORERS,
    OOFPredictions,
    cross_validate_layers,
    write_predictions,
)
from speechprobe.probes.runner import _score_rows

N_CLASSES, N_SPEAKERS = 5, 20


def make_task(n: int, n_layers: int, dim: int, seed: int = 0):
    """Pooled-feature-like data: class signal peaking mid-depth, speaker offsets, 20 speakers crossing classes."""
    rng = np.random.default_rng(seed)
    codes = np.arange(n) % N_CLASSES
    speakers = rng.integers(0, N_SPEAKERS, n)
    depth = np.linspace(0, 1, n_layers)
    centres = rng.normal(size=(n_layers, N_CLASSES, dim)) * (0.05 + 0.3 * np.sin(np.pi * depth))[:, None, None]
    offsets = rng.normal(size=(n_layers, N_SPEAKERS, dim)) * 0.3
    feats = centres[:, codes].transpose(1, 0, 2) + offsets[:, speakers].transpose(1, 0, 2)
    feats += rng.normal(size=(n, n_layers, dim))
    return feats.astype(np.float32), np.array([f"c{c}" for c in codes]), np.array([f"s{s}" for s in speakers])


def naive_bootstrap(oof: OOFPredictions, weights: np.ndarray) -> np.ndarray:
    """The loop one writes by hand: resampled indices and f1_score per resample, repeat, probe and layer."""
    n_rep, n_probes, n_layers, n = oof.pred.shape
    labels = np.arange(len(oof.classes))
    out = np.zeros((len(weights), n_probes, n_layers))
    for b, w in enumerate(weights):
        idx = np.repeat(np.arange(n), w.astype(int))
        for p in range(n_probes):
            for layer in range(n_layers):
                scores = [
                    f1_score(oof.y[idx], oof.pred[r, p, layer, idx], labels=labels, average="macro", zero_division=0)
                    for r in range(n_rep)
                ]
                out[b, p, layer] = np.mean(scores)
    return out


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_bootstrap(oof: OOFPredictions, n_boot: int, naive_boot: int) -> None:
    weights, unit = resample_weights(oof.y, oof.groups, naive_boot, seed=0)
    t_naive, naive = timed(lambda: naive_bootstrap(oof, weights))
    t_fast, fast = timed(lambda: bootstrap_scores(oof, weights))
    same = np.allclose(naive, fast, atol=1e-12)
    t_full, _ = timed(lambda: bootstrap_table(oof, "m", "t", n_boot, seed=0))
    shape = "x".join(map(str, oof.pred.shape))
    print(
        f"bootstrap ({unit}, predictions {shape} = repeats x probes x layers x clips): {naive_boot} resamples "
        f"naive {t_naive:.2f}s, vectorised {t_fast:.3f}s (x{t_naive / t_fast:.0f}), scores equal: {same}; "
        f"bootstrap_table with {n_boot} resamples {t_full:.2f}s"
    )


def bench_probing(features, labels, groups, rounds: int, n_jobs: int, out: Path) -> None:
    """Whole probing time, and the part the new metrics add: the main-process scoring of the stored
    predictions with every scorer against the earlier scorer set, and writing the predictions file."""
    earlier = (PROBE_SCORERS, {"nmi": CLUSTER_SCORERS["nmi"]}, {})
    now = (PROBE_SCORERS, CLUSTER_SCORERS, OOF_SCORERS)
    total, result = timed(lambda: cross_validate_layers(features, labels, groups, n_jobs=n_jobs))
    y = result.predictions.y
    n_classes = len(result.predictions.classes)
    clusters = {}
    for layer in range(features.shape[1]):  # k-means clusters stand-ins: the knn predictions (same sizes)
        for j, (_, test) in enumerate(result.plan.folds):
            clusters[layer, j] = result.predictions.pred[result.plan.repeat_of(j), 0, layer, test]
    probes = result.predictions.probes
    times: dict[str, list[float]] = {"earlier": [], "now": []}
    for r in range(rounds):
        for name in ("earlier", "now") if r % 2 == 0 else ("now", "earlier"):
            scorers = earlier if name == "earlier" else now
            args = (y, n_classes, result.plan, result.predictions.pred, clusters, probes, *scorers)
            times[name].append(timed(lambda a=args: _score_rows(*a))[0])
    write, _ = timed(lambda: write_predictions(out, "m", "t", result.predictions))
    extra = statistics.median(times["now"]) - statistics.median(times["earlier"])
    print(
        f"probing {features.shape[0]} clips x {features.shape[1]} layers x {features.shape[2]} dims, knn+mlp, "
        f"5 grouped folds, n_jobs={n_jobs}: {total:.1f}s in all; scoring in the main process "
        f"{statistics.median(times['now']):.2f}s with every metric vs {statistics.median(times['earlier']):.2f}s "
        f"with the earlier ones (+{extra:.2f}s, {100 * extra / total:.1f}% of probing); predictions file "
        f"{write * 1000:.0f} ms ({(out / 'predictions' / 'm__t.npz').stat().st_size / 1024:.0f} KiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--naive-boot", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}; {os.cpu_count()} CPUs; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    features, labels, groups = make_task(args.clips, args.layers, args.dims)
    result = cross_validate_layers(features, labels, groups, n_jobs=args.jobs)
    bench_bootstrap(result.predictions, args.boot, args.naive_boot)
    with tempfile.TemporaryDirectory() as tmp:
        bench_probing(features, labels, groups, args.rounds, args.jobs, Path(tmp))
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
