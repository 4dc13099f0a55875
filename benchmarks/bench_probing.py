"""Probing speed: a naive scikit-learn loop against ``probe_layers``, measured in the same run.

    python benchmarks/bench_probing.py                 # both shapes, 2 rounds each
    python benchmarks/bench_probing.py --rounds 1 --shapes 500x7x512

One task: N clips, L layers x D dims (float32, as the feature store holds them), 5 classes, 20 speakers
(grouped 5-fold CV), KNN + MLP + k-means NMI on every layer. The timed variants, run in turn within
each round so that they share the machine's load:

  naive        for layer, for fold: StandardScaler+KNN, StandardScaler+MLPClassifier, StandardScaler+KMeans
               NMI, with the libraries' default threading (what one writes by hand)
  naive-1t     the same loop with BLAS/OpenMP limited to one thread (isolates the algorithmic changes)
  sklearn-j1   probe_layers(backend="sklearn", n_jobs=1): the reference estimators only
  auto-jN      probe_layers(backend="auto", n_jobs=N): the default (the reference path on a CPU, the
               batched torch kernels for KNN + MLP on a GPU)
  torch-jN     probe_layers(backend="torch", n_jobs=N): the torch kernels forced, here on the CPU

Ratios are per round (naive time / variant time, same round), then the median over rounds. Also
printed: the two torch kernels against their scikit-learn estimators on the same cells, and a check
that the rows of every probe_layers variant equal the reference rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score, normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from speechprobe.probes import make_folds, probe_layers
from speechprobe.probes.fast import knn_predict, mlp_predict, standardise_layers

N_CLASSES, N_SPEAKERS, N_FOLDS, SEED = 5, 20, 5, 0


def make_task(n: int, n_layers: int, dim: int, seed: int = 0):
    """Whisper-like pooled features: class signal that rises then falls with depth, plus speaker offsets."""
    rng = np.random.default_rng(seed)
    codes = np.arange(n) % N_CLASSES
    speakers = rng.integers(0, N_SPEAKERS, n)
    depth = np.linspace(0, 1, n_layers)
    strength = 0.05 + 0.25 * np.sin(np.pi * depth)  # per-dimension class signal, in noise units
    centres = rng.normal(size=(n_layers, N_CLASSES, dim)) * strength[:, None, None]
    offsets = rng.normal(size=(n_layers, N_SPEAKERS, dim)) * 0.3
    noise = rng.normal(size=(n, n_layers, dim))
    features = centres[:, codes].transpose(1, 0, 2) + offsets[:, speakers].transpose(1, 0, 2) + noise
    labels = np.array([f"class{c}" for c in codes])
    return features.astype(np.float32), labels, np.array([f"spk{s}" for s in speakers])


def naive_loop(features, labels, groups):
    """The loop as one would write it by hand: every layer, every fold, three scikit-learn fits."""
    folds = make_folds(labels, groups, N_FOLDS, SEED)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for layer in range(features.shape[1]):
            for train, test in folds:
                X_train, X_test = features[train, layer], features[test, layer]
                y_train, y_test = labels[train], labels[test]
                knn = make_pipeline(StandardScaler(), KNeighborsClassifier(5)).fit(X_train, y_train)
                out.append(f1_score(y_test, knn.predict(X_test), average="macro"))
                mlp = make_pipeline(StandardScaler(), MLPClassifier((256,), random_state=SEED)).fit(X_train, y_train)
                out.append(f1_score(y_test, mlp.predict(X_test), average="macro"))
                km = make_pipeline(StandardScaler(), KMeans(N_CLASSES, n_init=10, random_state=SEED))
                clusters = km.fit(X_train.astype(np.float64)).predict(X_test.astype(np.float64))
                out.append(normalized_mutual_info_score(y_test, clusters))
    return out


def naive_loop_1t(features, labels, groups):
    with threadpool_limits(1):
        return naive_loop(features, labels, groups)


def kernels_vs_estimators(features, labels, groups):
    """Seconds for KNN and MLP on all (layer, fold) cells: scikit-learn estimators vs the torch kernels (CPU)."""
    folds = make_folds(labels, groups, N_FOLDS, SEED)
    times = {"knn-sklearn": 0.0, "knn-torch": 0.0, "mlp-sklearn": 0.0, "mlp-torch": 0.0}
    agree = {"knn": [], "mlp": []}
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for train, test in folds:
                X_train, X_test = standardise_layers(
                    features[train].transpose(1, 0, 2), features[test].transpose(1, 0, 2)
                )
                classes, codes = np.unique(labels[train], return_inverse=True)
                for name in ("knn", "mlp"):
                    start = time.perf_counter()
                    reference = []
                    for layer in range(X_train.shape[0]):
                        model = KNeighborsClassifier(5) if name == "knn" else MLPClassifier((256,), random_state=SEED)
                        reference.append(model.fit(X_train[layer], codes).predict(X_test[layer]))
                    times[f"{name}-sklearn"] += time.perf_counter() - start
                    start = time.perf_counter()
                    if name == "knn":
                        pred = knn_predict(X_train, codes, X_test, len(classes))
                    else:
                        pred = mlp_predict(X_train, codes, X_test, len(classes), random_state=SEED)[0]
                    times[f"{name}-torch"] += time.perf_counter() - start
                    agree[name].append(float(np.mean(np.stack(reference) == pred)))
    finally:
        torch.set_num_threads(previous)
    return times, {name: min(values) for name, values in agree.items()}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_shape(n: int, n_layers: int, dim: int, rounds: int, jobs: list[int], kernels: bool = True) -> None:
    features, labels, groups = make_task(n, n_layers, dim)
    print(f"\n== task: {n} clips x {n_layers} layers x {dim} dims, {N_CLASSES} classes, {N_FOLDS} grouped folds ==")
    variants = {
        "naive": lambda: naive_loop(features, labels, groups),
        "naive-1t": lambda: naive_loop_1t(features, labels, groups),
    }
    runs = [("sklearn", jobs[0])] + [("auto", j) for j in jobs] + [("torch", jobs[-1])]
    for backend, n_jobs in runs:
        variants[f"{backend}-j{n_jobs}"] = lambda b=backend, j=n_jobs: probe_layers(
            features, labels, groups, ("knn", "mlp"), N_FOLDS, SEED, j, backend=b
        )
    # Warm-up (imports, joblib worker start-up): reported, not counted.
    for n_jobs in jobs:
        warm, _ = timed(lambda j=n_jobs: probe_layers(features[:60, :1], labels[:60], groups[:60], ("knn",), 2, 0, j))
        print(f"warm-up probe_layers(n_jobs={n_jobs}) on a toy input: {warm:.2f} s (worker start-up, not counted)")

    times: dict[str, list[float]] = {name: [] for name in variants}
    rows: dict[str, list] = {}
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        for name in order:
            seconds, result = timed(variants[name])
            times[name].append(seconds)
            if not name.startswith("naive"):
                rows.setdefault(name, result)
        load = os.getloadavg()[0]
        print(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items())
            + f"  (load average {load:.1f})"
        )

    reference = rows[f"sklearn-j{jobs[0]}"]
    print(f"{'variant':<12} {'median s':>9} {'x naive':>8} {'x naive-1t':>11}  rows == sklearn reference")
    for name in names:
        vs_naive = statistics.median(a / b for a, b in zip(times["naive"], times[name]))
        vs_1t = statistics.median(a / b for a, b in zip(times["naive-1t"], times[name]))
        same = "-" if name.startswith("naive") else str(rows[name] == reference)
        print(f"{name:<12} {statistics.median(times[name]):>9.2f} {vs_naive:>8.2f} {vs_1t:>11.2f}  {same}")

    if not kernels:
        return
    kernel_times, agreement = kernels_vs_estimators(features, labels, groups)
    print(
        "kernels on all cells, one thread (CPU): "
        f"KNN sklearn {kernel_times['knn-sklearn']:.2f}s vs torch {kernel_times['knn-torch']:.2f}s "
        f"(x{kernel_times['knn-sklearn'] / kernel_times['knn-torch']:.1f}); "
        f"MLP sklearn {kernel_times['mlp-sklearn']:.2f}s vs torch {kernel_times['mlp-torch']:.2f}s "
        f"(x{kernel_times['mlp-sklearn'] / kernel_times['mlp-torch']:.2f}); "
        f"prediction agreement, worst fold: KNN {agreement['knn']:.4f}, MLP {agreement['mlp']:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shapes", default="500x7x512,500x13x768", help="comma-separated NxLxD")
    parser.add_argument("--jobs", default=f"1,{os.cpu_count()}", help="n_jobs values for probe_layers")
    parser.add_argument("--no-kernels", action="store_true", help="skip the one-thread CPU kernel comparison")
    args = parser.parse_args()
    jobs = sorted({int(j) for j in args.jobs.split(",")})
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}; {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
        f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    for shape in args.shapes.split(","):
        n, n_layers, dim = (int(v) for v in shape.lower().split("x"))
        bench_shape(n, n_layers, dim, args.rounds, jobs, kernels=not args.no_kernels)


if __name__ == "__main__":
    main()
